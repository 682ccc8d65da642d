"""The block-language parser: the MLN listings as written, words, positions, syntax errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.errors import SourceErrors, Span
from corral.lang.parser import INCLUDE_KEY, MAX_NESTING, QuotedWord, parse_text

from .treeshape import s, shape


def parse(text: str) -> tuple:
    return shape(parse_text(text, "t.mln"))


def error_of(text: str, file: str = "t.mln") -> str:
    with pytest.raises(SourceErrors) as caught:
        parse_text(text, file)
    return "\n".join(d.render(with_source=False) for d in caught.value.diagnostics)


def test_listing1_ldaptest(fixtures: Path) -> None:
    document = parse_text((fixtures / "ldaptest.mln").read_text(), "ldaptest.mln")
    eth0_server = s(
        "network",
        "eth0",
        block=(
            s("switch", "LDAPlan"),
            s("address", "10.0.0.2"),
            s("netmask", "255.255.255.0"),
            s("gateway", "10.0.0.1"),
        ),
    )
    assert shape(document) == (
        s("global", block=(s("project", "ldaptest"),)),
        s(
            "host",
            "ldapclient",
            block=(
                s("xen"),
                s("memory", "128M"),
                s("size", "2GB"),
                s("template", "ubuntu-client.ext3"),
                s("nameserver", "10.0.0.15"),
                s("network", "eth0", block=(s("switch", "LDAPlan"), s("address", "dhcp"))),
            ),
        ),
        s(
            "host",
            "ldapserver",
            block=(
                s("xen"),
                s("memory", "256M"),
                s("lvm"),
                s("size", "2GB"),
                s("template", "ubuntu-ldap.ext3"),
                s("nameserver", "10.0.0.15"),
                eth0_server,
                s("users", block=(s("kyrre", "147/Y.NtB9p7w"),)),
            ),
        ),
        s("switch", "LDAPlan", block=()),
    )


def test_listing2_italy_one_line_blocks(fixtures: Path) -> None:
    document = parse_text((fixtures / "italy.mln").read_text(), "italy.mln")
    assert shape(document) == (
        s("global", block=(s("project", "italy"),)),
        s(
            "superclass",
            "basic",
            block=(
                s("vmware"),
                s("template", "rhel5.vmdk"),
                s("memory", "128M"),
                s("network", "eth0", block=(s("address", "dhcp"), s("switch", "lan"))),
                s("service_host", "milano"),
            ),
        ),
        s("host", "uno", block=(s("superclass", "basic"),)),
        s("host", "due", block=(s("superclass", "basic"),)),
        s("host", "tre", block=(s("superclass", "basic"), s("memory", "256MB"))),
        s("switch", "lan", block=(s("vmware"),)),
    )


def test_every_word_keeps_its_line_and_column(fixtures: Path) -> None:
    document = parse_text((fixtures / "italy.mln").read_text(), "italy.mln")
    tre = document.statements[4]
    assert tre.key.span == Span("italy.mln", 14, 1)
    assert tre.values[0].span == Span("italy.mln", 14, 6)
    memory = tre.block[1]
    assert (memory.key.span, memory.values[0].span) == (
        Span("italy.mln", 16, 5),
        Span("italy.mln", 16, 12),
    )


def test_key_equals_value_is_key_value() -> None:
    assert parse("project = os$[gnum]\n$gnum = 03") == (
        s("project", "os$[gnum]"),
        s("$gnum", "03"),
    )


def test_equals_is_a_separator_only_right_after_the_key() -> None:
    assert parse('a b = c\nd "=" e\nf = = g') == (
        s("a", "b", "=", "c"),
        s("d", "=", "e"),
        s("f", "=", "g"),
    )


def test_semicolons_and_closing_braces_end_statements() -> None:
    assert parse("host a { xen; memory 1G; vcpus 2 }") == (
        s("host", "a", block=(s("xen"), s("memory", "1G"), s("vcpus", "2"))),
    )


def test_blocks_may_follow_each_other_on_one_line() -> None:
    assert parse("switch a { } switch b { }") == (
        s("switch", "a", block=()),
        s("switch", "b", block=()),
    )


def test_unusual_words_survive() -> None:
    text = (
        "users { kyrre 147/Y.NtB9p7w; root $6$salt$hash }\n"
        "nagios /home/nagios/.ssh/pubkey.outgoing\n"
        "netmask 255.255.255.0\n"
        "os$[gnum] a=b\n"
    )
    assert parse(text) == (
        s("users", block=(s("kyrre", "147/Y.NtB9p7w"), s("root", "$6$salt$hash"))),
        s("nagios", "/home/nagios/.ssh/pubkey.outgoing"),
        s("netmask", "255.255.255.0"),
        s("os$[gnum]", "a=b"),
    )


def test_quoted_strings() -> None:
    document = parse_text("runcmd \"echo 'a b' # not a comment\\n\" 'lit $x \\n'\n", "t.mln")
    values = document.statements[0].values
    assert [v.text for v in values] == ["echo 'a b' # not a comment\n", "lit $x \\n"]
    assert isinstance(values[0], QuotedWord) and not values[0].literal
    assert isinstance(values[1], QuotedWord) and values[1].literal
    assert parse('motd "say \\"hi\\" \\\\ done"') == (s("motd", 'say "hi" \\ done'),)


def test_comments_are_ignored() -> None:
    text = "# header\nhost a { # the first\n  xen # flag\n}\n"
    assert parse(text) == (s("host", "a", block=(s("xen"),)),)


def test_include_is_a_statement_anywhere() -> None:
    text = (
        "#include top.mln\n"
        "global {\n  service_hosts { #include servers.txt }\n}\n"
        '#include "a b.mln"'
    )
    document = parse_text(text, "t.mln")
    assert shape(document) == (
        s(INCLUDE_KEY, "top.mln"),
        s("global", block=(s("service_hosts", block=(s(INCLUDE_KEY, "servers.txt"),)),)),
        s(INCLUDE_KEY, "a b.mln"),
    )
    include = document.statements[1].block[0].block[0]
    assert include.key.span == Span("t.mln", 3, 19)
    assert include.values[0].span == Span("t.mln", 3, 28)


def test_windows_line_ends_and_empty_input() -> None:
    assert parse("host a {\r\n  xen\r\n}\r\n") == (s("host", "a", block=(s("xen"),)),)
    assert parse("") == ()
    assert parse("\n\n# only a comment\n") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "host a {\n  xen\n",
            "t.mln:3:1: error: unexpected end of file: missing '}'"
            " (the block opened at t.mln:1:8 is not closed)",
        ),
        ("host a {\n}\n}\n", "t.mln:3:1: error: unexpected '}': no block is open here"),
        ("{ xen }", "t.mln:1:1: error: '{' must follow a key, as in 'host NAME {'"),
        (
            "host a\n{\n}",
            "t.mln:2:1: error: '{' must follow a key, as in 'host NAME {'"
            " (put '{' on the same line as its key)",
        ),
        (
            'host a {\n  motd "hello\n}',
            't.mln:2:8: error: unterminated string: " must be closed on the same line',
        ),
        ("a 'b\n", "t.mln:1:3: error: unterminated string: ' must be closed on the same line"),
        (
            "#include\n",
            "t.mln:1:1: error: #include needs a file name (write: #include FILE)",
        ),
        ("project =\n", "t.mln:1:9: error: missing value after '=' for 'project'"),
        (
            "host a {\n  xen\x00\n}",
            "t.mln:2:6: error: control character U+0000 is not allowed in a project file"
            " (is this a binary file?)",
        ),
    ],
)
def test_syntax_errors_are_positioned(text: str, message: str) -> None:
    assert error_of(text) == message


def test_nesting_is_bounded() -> None:
    deep = "a {" * (MAX_NESTING + 5) + "}" * (MAX_NESTING + 5)
    assert f"blocks are nested more than {MAX_NESTING} deep" in error_of(deep)
    fine = "a {" * 50 + "}" * 50
    assert parse_text(fine, "t.mln").statements[0].key.text == "a"

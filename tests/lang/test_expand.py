"""Includes and variables, through load_document on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.errors import SourceErrors, Span
from corral.lang.load import load_document
from corral.lang.parser import QuotedWord
from corral.lang.tree import Word

from .treeshape import s, shape

DEFINE_HINT = " (define it before use, at the top level or in global: $name = value)"


def write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def errors_of(path: Path, text: str | None = None) -> list[str]:
    with pytest.raises(SourceErrors) as caught:
        load_document(path, text)
    return [d.render(with_source=False) for d in caught.value.diagnostics]


def test_listing4_and_5_course_pattern(fixtures: Path) -> None:
    document = load_document(fixtures / "group03.mln")
    assert shape(document)[0] == s("global", block=(s("project", "os03"),))
    common = document.statements[1]
    assert shape(common) == s(
        "superclass",
        "common",
        block=(
            s("xen"),
            s("lvm"),
            s("memory", "256M"),
            s("network", "eth0", block=(s("switch", "lan"), s("netmask", "255.255.255.0"))),
            s("users", block=(s("osuser03", "unique-value-1"),)),
            s("root_passwd", "unique-value-2"),
        ),
    )
    win = document.statements[4]
    assert shape(win.block)[3] == s("vncpasswd", "unique-value-3")
    user = common.block[4].block[0]
    oscourse = str(fixtures / "oscourse.mln")
    assert (user.key.span, user.values[0].span) == (
        Span(oscourse, 10, 9),
        Span(oscourse, 10, 23),
    )
    assert [st.key.text for st in document.statements] == [
        "global",
        "superclass",
        "switch",
        "host",
        "host",
    ]


def test_listing6_include_inside_a_block_and_variable_from_global(fixtures: Path) -> None:
    document = load_document(fixtures / "bioinfo.mln")
    autoenum = document.statements[0].block[1]
    service_hosts = autoenum.block[-1]
    assert shape(service_hosts) == s(
        "service_hosts", block=tuple(s(f"bigbox{n}") for n in range(1, 7))
    )
    assert service_hosts.block[0].key.span == Span(str(fixtures / "servers.txt"), 1, 1)
    assert shape(document.statements[0].block) == (
        s("project", "bioinfo"),
        shape(autoenum),
    )
    gateway = document.statements[1].block[3].block[0]
    assert shape(gateway) == s("gateway", "192.168.33.211")
    assert gateway.values[0].span == Span(str(fixtures / "bioinfo.mln"), 20, 17)


def test_listing7_plugins_pass_through(fixtures: Path) -> None:
    document = load_document(fixtures / "webserv.mln")
    assert shape(document.statements[0].block[2]) == s(
        "sshkey", block=(s("nagios", "/home/nagios/.ssh/pubkey.outgoing"),)
    )


def test_include_is_relative_to_the_including_file(tmp_path: Path) -> None:
    write(tmp_path, "sub/inner.mln", "#include ../leaf.mln\nmemory 1G\n")
    write(tmp_path, "leaf.mln", "vcpus 2\n")
    main = write(tmp_path, "main.mln", "host a {\n  #include sub/inner.mln\n}\n")
    document = load_document(main)
    assert shape(document) == (s("host", "a", block=(s("vcpus", "2"), s("memory", "1G"))),)
    assert document.statements[0].block[0].key.span == Span(
        str(tmp_path / "sub" / "../leaf.mln"), 1, 1
    )


def test_the_same_file_may_be_included_twice(tmp_path: Path) -> None:
    write(tmp_path, "common.mln", "xen\n")
    main = write(
        tmp_path, "main.mln", "host a { #include common.mln }\nhost b { #include common.mln }"
    )
    assert shape(load_document(main)) == (
        s("host", "a", block=(s("xen"),)),
        s("host", "b", block=(s("xen"),)),
    )


def test_missing_include_is_an_error_at_the_include(tmp_path: Path) -> None:
    main = write(tmp_path, "main.mln", "global {\n  project p\n}\n  #include nothere.mln\n")
    assert errors_of(main) == [
        f"{main}:4:3: error: cannot read included file '{tmp_path / 'nothere.mln'}':"
        " No such file or directory"
    ]


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    a = write(tmp_path, "a.mln", "x 1\n#include b.mln\n")
    write(tmp_path, "b.mln", "y 2\n#include a.mln\n")
    assert errors_of(a) == [
        f"{tmp_path / 'b.mln'}:2:1: error: include cycle: a.mln -> b.mln -> a.mln"
    ]
    itself = write(tmp_path, "self.mln", "#include self.mln\n")
    assert errors_of(itself) == [f"{itself}:1:1: error: include cycle: self.mln -> self.mln"]


def test_errors_in_several_files_are_reported_together(tmp_path: Path) -> None:
    write(tmp_path, "bad.mln", "host x {\n")
    main = write(
        tmp_path, "main.mln", "#include bad.mln\nhost a { memory $mem }\nhost b { x $[y] }\n"
    )
    bad = tmp_path / "bad.mln"
    assert errors_of(main) == [
        f"{bad}:2:1: error: unexpected end of file: missing '}}'"
        f" (the block opened at {bad}:1:8 is not closed)",
        f"{main}:2:17: error: undefined variable '$mem'" + DEFINE_HINT,
        f"{main}:3:12: error: undefined variable '$y'" + DEFINE_HINT,
    ]


def test_undefined_variable_suggests_a_close_name(tmp_path: Path) -> None:
    main = write(tmp_path, "m.mln", "$gnum = 03\nhost a {\n  name os$[gunm]\n}\n")
    assert errors_of(main) == [
        f"{main}:3:10: error: undefined variable '$gunm' (did you mean '$gnum'?)"
    ]


def test_variable_is_visible_only_after_its_definition(tmp_path: Path) -> None:
    main = write(tmp_path, "m.mln", "project $name\n$name = late\n")
    assert errors_of(main) == [f"{main}:1:9: error: undefined variable '$name'" + DEFINE_HINT]


def test_variables_whole_words_and_inside_words(tmp_path: Path) -> None:
    text = (
        "$net = 10.0.0\n"
        "$pair = a b\n"
        "global { $suffix = x }\n"
        "host h$[suffix] {\n"
        "  address $[net].5\n"
        "  packages $pair c\n"
        "  root_passwd $6$salt$hash\n"
        "  motd '$net'\n"
        '  banner "$net"\n'
        "  $net keyvar\n"
        "}\n"
    )
    assert shape(load_document(write(tmp_path, "m.mln", text))) == (
        s("global", block=()),
        s(
            "host",
            "hx",
            block=(
                s("address", "10.0.0.5"),
                s("packages", "a", "b", "c"),
                s("root_passwd", "$6$salt$hash"),
                s("motd", "$net"),
                s("banner", "10.0.0"),
                s("10.0.0", "keyvar"),
            ),
        ),
    )


def test_definitions_in_an_included_file_count(tmp_path: Path) -> None:
    write(tmp_path, "vars.mln", "$mem = 512M\n")
    main = write(tmp_path, "m.mln", "global {\n  #include vars.mln\n}\nhost a { memory $mem }\n")
    assert shape(load_document(main)) == (
        s("global", block=()),
        s("host", "a", block=(s("memory", "512M"),)),
    )


def test_later_definition_replaces_earlier(tmp_path: Path) -> None:
    main = write(tmp_path, "m.mln", "$v = 1\na $v\n$v = 2\nb $v\n")
    assert shape(load_document(main)) == (s("a", "1"), s("b", "2"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$v\n", "1:1: error: variable '$v' has no value (write: $v = VALUE)"),
        ("$v { a }\n", "1:1: error: variable '$v' cannot have a block as value"),
        ("a x$[1bad]\n", "1:4: error: invalid variable name '1bad'"),
        ("a x$[open\n", "1:4: error: unclosed '$[': write $[name]"),
    ],
)
def test_bad_variable_syntax(tmp_path: Path, text: str, message: str) -> None:
    main = write(tmp_path, "m.mln", text)
    assert errors_of(main) == [f"{main}:{message}"]


def test_text_argument_is_used_instead_of_the_file(tmp_path: Path) -> None:
    write(tmp_path, "inc.mln", "xen\n")
    document = load_document(tmp_path / "unsaved.mln", "host a { #include inc.mln }")
    assert shape(document) == (s("host", "a", block=(s("xen"),)),)


def test_unreadable_and_undecodable_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mln"
    assert errors_of(missing) == [
        f"{missing}:1:1: error: cannot read project file: No such file or directory"
    ]
    latin1 = write(tmp_path, "latin1.mln", "host a {\n  motd caf\xe9\n}\n".encode("latin-1"))
    assert errors_of(latin1) == [
        f"{latin1}:2:11: error: not UTF-8 text: byte 0xe9 cannot be decoded"
        " (save the file as UTF-8)"
    ]
    assert errors_of(tmp_path) == [
        f"{tmp_path}:1:1: error: cannot read project file: Is a directory"
    ]


def test_undecodable_included_file_is_positioned_in_it(tmp_path: Path) -> None:
    write(tmp_path, "bin.mln", b"\x00\x01\xff\xfe")
    main = write(tmp_path, "m.mln", "#include bin.mln\n")
    assert errors_of(main) == [
        f"{tmp_path / 'bin.mln'}:1:3: error: not UTF-8 text: byte 0xff cannot be decoded"
        " (save the file as UTF-8)"
    ]


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    main = write(tmp_path, "m.mln", "\ufeffglobal { project p }\n".encode())
    assert shape(load_document(main)) == (s("global", block=(s("project", "p"),)),)


def test_quoted_include_path_with_a_space(tmp_path: Path) -> None:
    write(tmp_path, "my parts/p.mln", "xen\n")
    main = write(tmp_path, "m.mln", 'host a { #include "my parts/p.mln" }\n')
    assert shape(load_document(main)) == (s("host", "a", block=(s("xen"),)),)


def test_expanded_tree_keeps_which_words_were_quoted(fixtures: Path, tmp_path: Path) -> None:
    quoted = write(tmp_path, "q.mln", "host 'a' { motd \"$x\" 'lit'\n  plain word }\n$x = 1\n")
    with pytest.raises(SourceErrors):
        load_document(quoted)  # $x is used before its definition
    quoted.write_text(
        "$x = 1\n$cmd = 'apt-get update'\n"
        "host 'a' { motd \"hi $[x]\" 'lit $x'\n  plain word $x $cmd }\n"
    )
    documents = [load_document(quoted), load_document(fixtures / "group03.mln")]

    def words(statements: tuple) -> list:
        found = []
        for statement in statements:
            found += [statement.key, *statement.values]
            found += words(statement.block or ())
        return found

    assert {type(word) for word in words(documents[1].statements)} == {Word}
    host = documents[0].statements[0]
    motd, plain = host.block
    assert host.values == (QuotedWord("a", host.values[0].span, literal=True),)
    assert [(type(w), w.text) for w in motd.values] == [
        (QuotedWord, "hi 1"),
        (QuotedWord, "lit $x"),
    ]
    assert [(type(w), w.text) for w in plain.values] == [
        (Word, "word"),
        (Word, "1"),
        (QuotedWord, "apt-get update"),
    ]
    assert (plain.values[2].span.line, plain.values[2].span.column) == (4, 17)  # the use


def test_package_exports_resolve() -> None:
    import corral.lang

    for name in corral.lang.__all__:
        assert callable(getattr(corral.lang, name))

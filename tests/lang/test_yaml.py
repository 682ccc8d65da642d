"""YAML as a second spelling of the same tree: same shape, positions from the YAML marks."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.errors import SourceErrors, Span
from corral.lang.load import load_document
from corral.lang.yaml_source import parse_yaml

from .treeshape import s, shape


def yaml_shape(text: str) -> tuple:
    return shape(parse_yaml(text, "t.yaml"))


def errors_of(text: str) -> list[str]:
    with pytest.raises(SourceErrors) as caught:
        parse_yaml(text, "t.yaml")
    return [d.render(with_source=False) for d in caught.value.diagnostics]


def test_listing2_in_yaml_is_the_same_tree_as_in_block_text(fixtures: Path) -> None:
    assert shape(load_document(fixtures / "italy.yaml")) == shape(
        load_document(fixtures / "italy.mln")
    )


def test_positions_come_from_the_yaml_marks(fixtures: Path) -> None:
    document = load_document(fixtures / "italy.yaml")
    file = str(fixtures / "italy.yaml")
    tre = document.statements[4]
    assert (tre.key.span, tre.values[0].span) == (Span(file, 15, 1), Span(file, 15, 6))
    memory = tre.block[1]
    assert (memory.key.span, memory.values[0].span) == (Span(file, 17, 3), Span(file, 17, 11))
    due = document.statements[3]
    assert due.values[0].span == Span(file, 14, 3)


def test_scalars_keep_their_written_text() -> None:
    assert yaml_shape('$gnum: 03\nnumhosts: 36\nmemory: 1.50\nname: "quoted"\n') == (
        s("$gnum", "03"),
        s("numhosts", "36"),
        s("memory", "1.50"),
        s("name", "quoted"),
    )


def test_flags_lists_and_multiword_keys() -> None:
    text = (
        "host a:\n"
        "  xen:\n"
        "  hvm: true\n"
        "  lvm: false\n"
        "  packages: [vim, curl]\n"
        "  addresses begin: 150\n"
        "  runcmd: |\n"
        "    echo one\n"
    )
    assert yaml_shape(text) == (
        s(
            "host",
            "a",
            block=(
                s("xen"),
                s("hvm"),
                s("packages", "vim", "curl"),
                s("addresses", "begin", "150"),
                s("runcmd", "echo one\n"),
            ),
        ),
    )


def test_labelled_keys_nest_and_other_mappings_are_blocks() -> None:
    text = (
        "global:\n"
        "  apache: {doc_root: /var/www}\n"
        "host:\n"
        "  web14:\n"
        "    network:\n"
        "      eth0: {switch: lan}\n"
        "    users: {kyrre: 147/Y.NtB9p7w}\n"
        "switch:\n"
        "  lan:\n"
    )
    assert yaml_shape(text) == (
        s("global", block=(s("apache", block=(s("doc_root", "/var/www"),)),)),
        s(
            "host",
            "web14",
            block=(
                s("network", "eth0", block=(s("switch", "lan"),)),
                s("users", block=(s("kyrre", "147/Y.NtB9p7w"),)),
            ),
        ),
        s("switch", "lan", block=()),
    )


def test_repeated_keys_are_kept_in_order() -> None:
    assert yaml_shape("a: 1\nb: 2\na: 3\n") == (s("a", "1"), s("b", "2"), s("a", "3"))


def test_include_key_splices_like_hash_include(tmp_path: Path) -> None:
    (tmp_path / "servers.txt").write_text("h1\nh2\n")
    (tmp_path / "more.yaml").write_text("vcpus: 2\n")
    main = tmp_path / "p.yaml"
    main.write_text(
        "global:\n"
        "  $mem: 1G\n"
        "  autoenum:\n"
        "    service_hosts: {include: servers.txt}\n"
        "host a:\n"
        "  memory: $mem\n"
        "  include: [more.yaml]\n"
    )
    assert shape(load_document(main)) == (
        s("global", block=(s("autoenum", block=(s("service_hosts", block=(s("h1"), s("h2"))),)),)),
        s("host", "a", block=(s("memory", "1G"), s("vcpus", "2"))),
    )


def test_block_file_may_include_yaml(tmp_path: Path) -> None:
    (tmp_path / "part.yml").write_text("memory: 256M\n")
    main = tmp_path / "p.mln"
    main.write_text("host a {\n  #include part.yml\n}\n")
    assert shape(load_document(main)) == (s("host", "a", block=(s("memory", "256M"),)),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "host a:\n  memory: [1\n",
            "t.yaml:3:1: error: invalid YAML: while parsing a flow sequence,"
            " expected ',' or ']', but got '<stream end>'",
        ),
        ("- a\n- b\n", "t.yaml:1:1: error: a YAML project file must be a mapping of keys"),
        (
            "host a:\n  packages: [[x]]\n",
            "t.yaml:2:14: error: expected a plain value here, not a list or mapping",
        ),
        ("? [a]\n: 1\n", "t.yaml:1:3: error: a key must be a plain word such as 'memory'"),
        ("include:\n", "t.yaml:1:1: error: include needs a file name (write: include: FILE)"),
        (
            "a: 1\nb: \x01\n",
            "t.yaml:2:4: error: control character U+0001 is not allowed in a project file"
            " (is this a binary file?)",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "t.yaml:2:1: error: invalid YAML: expected a single document in the stream,"
            " but found another document",
        ),
    ],
)
def test_yaml_errors_are_positioned(text: str, message: str) -> None:
    assert errors_of(text) == [message]


def test_recursive_alias_is_an_error_not_a_hang() -> None:
    messages = errors_of("a: &x\n  b: *x\n")
    assert messages and all("nested too deeply or recursive" in m for m in messages)


def test_empty_yaml_is_an_empty_project() -> None:
    assert yaml_shape("") == ()
    assert yaml_shape("# nothing\n") == ()

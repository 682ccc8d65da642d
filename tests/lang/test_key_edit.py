"""``corral set``'s edit of a file's text: one statement changed, every other byte kept."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from corral.errors import InvalidRequest, NotFoundError
from corral.lang.key_edit import Edited, edit_key
from corral.lang.keypath import parse_key_path
from corral.lang.load import load_document
from corral.lang.parser import parse_text
from corral.lang.tree import Statement

LABELLED = frozenset({"host", "switch", "superclass", "network", "disk"})

LAB = """\
# The lab: two hosts.
global {
    project lab   # its name

    sshkey {
        root keys/root.pub
    }
}

superclass node {
    template tiny
}
host web {
    superclass node
    memory 128M  # small for now
    nameserver 10.0.0.1
    wait console 120
    network eth0 {
        switch lan
        address dhcp
    }

    # who may log in
    users { alice PASS; bob PASS2 }
}
host db {
\tmemory = 256M
\tservice_host "h1"
}
host tiny { template tiny }
host empty {}
switch lan { address 10.0.0.1/24 }
"""


def edit(path: str, values: Sequence[str] | None, text: str = LAB,
         file: str = "lab.corral") -> Edited:
    return edit_key(text, file, parse_key_path(path), values,
                    view=parse_text(text.removeprefix("\ufeff"), file), labelled=LABELLED)


def statement(text: str, *keys: str) -> Statement:
    """The statement found by following ``keys`` (labels included) in ``text``."""
    level = parse_text(text, "x").statements
    found: Statement | None = None
    remaining = list(keys)
    while remaining:
        key = remaining.pop(0)
        matches = [s for s in level if s.key.text == key]
        if len(matches) > 1 or (matches and matches[0].is_block and matches[0].values
                                and remaining and matches[0].values[0].text == remaining[0]):
            label = remaining.pop(0)
            matches = [s for s in matches if s.values and s.values[0].text == label]
        assert len(matches) == 1, (keys, key)
        found = matches[0]
        level = found.block or ()
    assert found is not None
    return found


def test_a_stated_value_is_replaced_in_place_and_nothing_else_changes() -> None:
    edited = edit("host.web.memory", ["256M"])
    assert edited.text == LAB.replace("memory 128M  # small", "memory 256M  # small")
    assert edited.change.summary() == "lab.corral:15: memory 128M -> 256M"
    assert edited.change.as_json() == {
        "file": "lab.corral", "line": 15, "path": "host.web.memory", "action": "changed",
        "old": "memory 128M", "new": "memory 256M"}


def test_a_nested_key_an_equals_sign_and_quotes_are_handled() -> None:
    assert edit("host.web.network.eth0.address", ["10.0.0.5"]).text == LAB.replace(
        "address dhcp", "address 10.0.0.5")
    assert edit("host.db.memory", ["1G"]).text == LAB.replace("memory = 256M", "memory = 1G")
    assert edit("host.db.service_host", ["h2"]).text == LAB.replace(
        'service_host "h1"', "service_host h2")
    assert edit("global.sshkey.root", ["keys/new.pub"]).text == LAB.replace(
        "root keys/root.pub", "root keys/new.pub")
    assert edit("host.web.users.bob", ["NEW"]).text == LAB.replace("bob PASS2", "bob NEW")


def test_several_words_and_no_words() -> None:
    assert edit("host.web.wait", ["ssh", "60"]).text == LAB.replace(
        "wait console 120", "wait ssh 60")
    assert edit("host.web.wait", []).text == LAB.replace("wait console 120", "wait")
    flag = edit("host.web.lvm", [])
    assert "    lvm\n    # who" not in flag.text  # added after the last statement
    assert statement(flag.text, "host", "web", "lvm").values == ()
    assert flag.change.summary() == "lab.corral:25: added lvm"


@pytest.mark.parametrize("word", ["a b", 'say "hi"\\', "=", "", "#x", "{x}", "semi;colon",
                                  "it's", "tab\there", "$HOME"])
def test_a_word_is_written_so_that_it_reads_back_as_itself(word: str) -> None:
    edited = edit("host.web.users.carol", [word, "plain"])
    carol = statement(edited.text, "host", "web", "users", "carol")
    assert [w.text for w in carol.values] == [word, "plain"]


def test_a_missing_key_is_added_after_the_last_statement_with_its_indentation() -> None:
    edited = edit("host.db.vcpus", ["2"])
    assert edited.text == LAB.replace('\tservice_host "h1"\n',
                                      '\tservice_host "h1"\n\tvcpus 2\n')
    assert edited.change.line == 29 and edited.change.action == "added"


def test_a_one_line_block_and_an_empty_one_get_it_inline() -> None:
    assert edit("host.tiny.vcpus", ["2"]).text == LAB.replace(
        "host tiny { template tiny }", "host tiny { template tiny; vcpus 2 }")
    assert edit("host.empty.vcpus", ["2"]).text == LAB.replace(
        "host empty {}", "host empty { vcpus 2 }")
    assert edit("host.web.users.carol", ["C"]).text == LAB.replace(
        "bob PASS2 }", "bob PASS2; carol C }")


def test_missing_labelled_and_unlabelled_blocks_are_created() -> None:
    edited = edit("host.web.network.eth1.address", ["dhcp"])
    assert edited.text == LAB.replace(
        "    users { alice PASS; bob PASS2 }\n",
        "    users { alice PASS; bob PASS2 }\n    network eth1 {\n        address dhcp\n"
        "    }\n")
    assert edited.change.summary() == "lab.corral:25: added network eth1 { address dhcp }"
    disk = edit("host.db.disk.data.size", ["1G"])
    assert disk.text == LAB.replace('\tservice_host "h1"\n',
                                    '\tservice_host "h1"\n\tdisk data {\n\t\tsize 1G\n\t}\n')
    inline = edit("host.tiny.network.eth0.switch", ["lan"])
    assert "host tiny { template tiny; network eth0 { switch lan } }" in inline.text
    files = edit("host.web.files./etc/motd", ["Hello there"])
    assert '    files {\n        /etc/motd "Hello there"\n    }\n}' in files.text


def test_a_new_stanza_is_appended_to_the_file() -> None:
    edited = edit("switch.dmz.address", ["10.1.0.1/24"])
    assert edited.text == LAB + "\nswitch dmz {\n    address 10.1.0.1/24\n}\n"
    assert edited.change.line == LAB.count("\n") + 2


def test_unset_removes_the_line_with_its_comment_and_keeps_the_rest() -> None:
    edited = edit("host.web.memory", None)
    assert edited.text == LAB.replace("    memory 128M  # small for now\n", "")
    assert edited.change.summary() == "lab.corral:15: removed memory 128M"
    assert edit("global.project", None).text == LAB.replace("    project lab   # its name\n", "")


def test_unset_inline_statements_and_whole_blocks() -> None:
    assert edit("host.web.users.alice", None).text == LAB.replace(
        "{ alice PASS; bob PASS2 }", "{ bob PASS2 }")
    assert edit("host.web.users.bob", None).text == LAB.replace(
        "{ alice PASS; bob PASS2 }", "{ alice PASS }")
    assert edit("host.tiny.template", None).text == LAB.replace(
        "host tiny { template tiny }", "host tiny { }")
    block = edit("host.web.network.eth0", None)
    assert block.text == LAB.replace(
        "    network eth0 {\n        switch lan\n        address dhcp\n    }\n", "")
    assert block.change.old == "network eth0 { ... }"
    assert edit("global.sshkey", None).text == LAB.replace(
        "    sshkey {\n        root keys/root.pub\n    }\n", "")
    assert edit("switch.lan", None).text == LAB.replace("switch lan { address 10.0.0.1/24 }\n",
                                                        "")


def test_a_key_stated_twice_is_refused_naming_both_places() -> None:
    text = LAB.replace("    nameserver 10.0.0.1\n", "    nameserver 10.0.0.1\n"
                       "    nameserver 10.0.0.2\n")
    with pytest.raises(InvalidRequest) as refused:
        edit("host.web.nameserver", ["10.0.0.3"], text)
    assert refused.value.message.startswith("lab.corral:16:5: host.web.nameserver is ambiguous")
    assert "lab.corral:17:5" in refused.value.message
    two = LAB.replace("    users {", "    network eth1 { switch lan }\n    users {")
    with pytest.raises(InvalidRequest) as labelled:
        edit("host.web.network", None, two)
    assert labelled.value.hint == "name one by its label: host.web.network.eth0"


def test_what_cannot_be_done_is_refused_with_the_place() -> None:
    with pytest.raises(InvalidRequest, match=r"^lab.corral:18:5: host.web.network.eth0 is a "
                       "block"):
        edit("host.web.network.eth0", ["x"])
    with pytest.raises(InvalidRequest, match="`network eth9` is a block"):
        edit("host.web.network.eth9", ["x"])
    with pytest.raises(NotFoundError, match=r"host\.web\.cpus is not stated"):
        edit("host.web.cpus", None)
    with pytest.raises(InvalidRequest, match="variables are not edited"):
        edit("$mem", ["1G"])
    for bad in ("", "host..memory", "host.web.", '"host.web'):
        with pytest.raises(InvalidRequest):
            parse_key_path(bad)
    assert parse_key_path('host."web.lab".memory').segments == ("host", "web.lab", "memory")


def test_a_yaml_file_is_refused_at_the_line_of_the_key() -> None:
    from corral.lang.yaml_source import parse_yaml

    text = "# lab\nglobal: {project: lab}\nhost web:\n  template: tiny\n  memory: 128M\n"
    with pytest.raises(InvalidRequest) as refused:
        edit_key(text, "lab.yaml", parse_key_path("host.web.memory"), ["256M"],
                 view=parse_yaml(text, "lab.yaml"), labelled=LABELLED)
    assert refused.value.message.startswith("lab.yaml:5:")
    assert "YAML" in refused.value.message


def test_a_key_in_an_included_file_is_refused_naming_that_file(tmp_path: Path) -> None:
    (tmp_path / "common.corral").write_text("superclass node {\n    memory 64M\n}\n"
                                            "host shared {\n    template tiny\n}\n")
    (tmp_path / "web.inc").write_text("    memory 128M\n")
    main = tmp_path / "lab.corral"
    text = ("global { project lab }\n#include common.corral\n"
            "host web {\n    #include web.inc\n    superclass node\n}\n")
    main.write_text(text)
    view = load_document(main)
    file = str(main)

    def attempt(path: str, values: list[str] | None) -> str:
        with pytest.raises(InvalidRequest) as refused:
            edit_key(text, file, parse_key_path(path), values, view=view, labelled=LABELLED)
        return refused.value.message

    assert attempt("host.web.memory", ["1G"]).startswith(f"{tmp_path}/web.inc:1:5: ")
    assert "edit that file instead" in attempt("host.web.memory", None)
    assert attempt("host.shared.vcpus", ["2"]).startswith(f"{tmp_path}/common.corral:4:1: ")
    assert f"{tmp_path}/common.corral" in attempt("superclass.node.memory", ["1G"])
    edited = edit_key(text, file, parse_key_path("host.web.vcpus"), ["2"], view=view,
                      labelled=LABELLED)
    assert edited.text == text.replace("superclass node\n}", "superclass node\n    vcpus 2\n}")


def test_line_endings_and_a_byte_order_mark_are_kept() -> None:
    crlf = LAB.replace("\n", "\r\n")
    edited = edit("host.db.vcpus", ["2"], crlf)
    assert edited.text == crlf.replace('\tservice_host "h1"\r\n',
                                       '\tservice_host "h1"\r\n\tvcpus 2\r\n')
    bom = "\ufeff" + LAB
    assert edit("host.web.memory", ["1G"], bom).text == bom.replace("memory 128M", "memory 1G")


def _paths(statements: Sequence[Statement], prefix: tuple[str, ...] = ()) -> list[str]:
    """Every PATH that names a statement of ``statements`` (labelled blocks by label)."""
    found = []
    for statement in statements:
        if statement.key.text.startswith(("#", "$")) or "." in statement.key.text:
            continue
        here = (*prefix, statement.key.text)
        if statement.is_block and statement.values:
            if "." in statement.values[0].text:
                continue
            here = (*here, statement.values[0].text)
        found.append(".".join(here))
        found += _paths(statement.block or (), here)
    return found


@pytest.mark.parametrize("name", ["italy.mln", "webserv.mln", "oscourse.mln", "bioinfo.mln"])
def test_every_statement_of_real_files_is_set_and_unset_into_text_that_parses(
    name: str
) -> None:
    text = (Path(__file__).parent / "fixtures" / name).read_text()
    tried = 0
    for path in _paths(parse_text(text, name).statements):
        try:
            removed = edit(path, None, text, name)
        except InvalidRequest:  # stated twice: refused, as it must be
            continue
        tried += 1
        parse_text(removed.text, name)
        assert len(removed.text) < len(text)
        kept_start = next((i for i, (a, b) in enumerate(zip(text, removed.text, strict=False))
                           if a != b), len(removed.text))
        assert text.endswith(removed.text[kept_start:])  # one stretch was cut, no more
        with contextlib.suppress(InvalidRequest):  # a block takes no value
            changed = edit(path, ["new value", "2"], text, name)
            assert [w.text for w in statement(changed.text, *path.split(".")).values][-2:] \
                == ["new value", "2"]
    assert tried > 5

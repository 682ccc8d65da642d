"""Superclass inheritance and stanza checks (corral.lang.resolve), through the real parser."""

from corral.errors import SourceErrors
from corral.lang.parser import parse_text
from corral.lang.resolve import MergePolicy, merge_statements, resolve_document
from corral.model.schema import MERGE_POLICY


def resolve(text: str):
    return resolve_document(parse_text(text, "r.mln"), MERGE_POLICY)


def shape(statements) -> list:
    """Statements as nested lists of words, for readable assertions."""
    return [
        [
            s.key.text,
            *(w.text for w in s.values),
            *([shape(s.block)] if s.block is not None else []),
        ]
        for s in statements
    ]


def test_blocks_merge_by_key_and_label_and_the_inheritor_wins_on_scalars() -> None:
    base = parse_text("network eth0 { switch lan\n address dhcp }\nmemory 128M\nxen", "b")
    over = parse_text("network eth0 { address 10.0.0.2 }\nnetwork eth1 { }\nmemory 256M\nkvm", "o")
    merged = merge_statements(base.statements, over.statements, MERGE_POLICY)
    assert shape(merged) == [
        ["network", "eth0", [["switch", "lan"], ["address", "10.0.0.2"]]],
        ["network", "eth1", []],
        ["memory", "256M"],
        ["kvm"],
    ]


def test_list_blocks_are_replaced_whole() -> None:
    base = parse_text("runcmd { echo a\n echo b }", "b").statements
    over = parse_text("runcmd { echo c }", "o").statements
    assert shape(merge_statements(base, over, MERGE_POLICY)) == [["runcmd", [["echo", "c"]]]]
    plain = merge_statements(base, over, MergePolicy())
    assert shape(plain) == [["runcmd", [["echo", "c"]]]]  # same key: the inheritor's line wins


def test_nested_superclasses_and_later_references_win() -> None:
    tree = resolve(
        """
        superclass a { memory 64M
            network eth0 { switch lan } }
        superclass b { superclass a
            memory 128M
            vcpus 2 }
        superclass c { vcpus 4 }
        host h { superclass b
            superclass c
            network eth0 { address dhcp } }
        """
    )
    (host,) = tree.hosts
    assert shape(host.block) == [
        ["network", "eth0", [["switch", "lan"], ["address", "dhcp"]]],
        ["memory", "128M"],
        ["vcpus", "4"],
    ]


def test_inherited_words_keep_the_position_of_the_superclass_text() -> None:
    tree = resolve("superclass s {\n    memory 1G\n}\nhost h { superclass s }\n")
    memory = tree.hosts[0].block[0]
    assert (memory.values[0].span.line, memory.values[0].span.column) == (2, 12)


def diagnostics(text: str) -> list[str]:
    try:
        resolve(text)
    except SourceErrors as errors:
        return [f"{d.span.line}:{d.span.column}: {d.message}" for d in errors.diagnostics]
    raise AssertionError("no error")


def test_cycles_and_unknown_superclasses_are_positioned_errors() -> None:
    found = diagnostics(
        "superclass a { superclass b }\nsuperclass b { superclass a }\n"
        "host h { superclass a }\nhost g { superclass basc }\nsuperclass basic { }\n"
    )
    assert found == [
        "2:27: superclass cycle: a -> b -> a",
        "4:21: unknown superclass 'basc'",
    ]


def test_unknown_and_duplicate_stanzas() -> None:
    found = diagnostics("hots a { }\nhost a { }\nhost a { }\nswitch lan\n")
    assert found == [
        "1:1: unknown stanza 'hots': a project file holds global, host, switch, "
        "superclass and group stanzas",
        "3:6: duplicate host 'a' (first defined at r.mln:2:6)",
        "4:1: switch needs a block: switch lan { ... }",
    ]

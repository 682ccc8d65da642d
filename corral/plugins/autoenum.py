"""``autoenum``: generate many hosts from one superclass (MLN Listing 6).

    global {
        project bioinfo
        autoenum {
            superclass cluster-node     # what every generated host inherits
            numhosts 36                 # how many
            address auto                # number the interfaces of the superclass
            addresses begin 150         # ... starting at host number 150
            net 128.39.73.0             # ... in this network
            netmask 255.255.255.0       # optional; the default
            service_hosts {             # optional: round robin over these
                #include servers.txt    # (one or several names a line)
            }
            prefix node                 # optional: name hosts node1, node2, ...
        }
    }

Host names: ``PREFIX`` + ``i`` for ``i`` = 1 .. ``numhosts``, where ``PREFIX``
is the ``prefix`` setting or else the superclass name (``cluster-node1`` ..
``cluster-node36``). The names depend only on these two settings, so they are
stable across runs and edits elsewhere in the file.

Host ``i`` gets ``service_host`` = ``service_hosts[(i - 1) % len]``, and with
``address auto`` every ``network IF`` of the superclass that has no address
(or ``address auto``) gets ``net + begin + i - 1`` and, when it has none, the
netmask. A host written in the file with a generated name is merged over the
generated one (the written one wins), so one node of a cluster can differ.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

from corral.errors import Span
from corral.lang.resolve import merge_statements
from corral.lang.tree import Document, Statement, Word
from corral.model import values
from corral.model.schema import KeySpec, Shape
from corral.model.statements import (
    INVALID,
    Groups,
    convert,
    read_block,
    simple_fields,
    value_word,
    words_of,
)
from corral.plugins.base import ExpandContext, Plugin

DEFAULT_NETMASK = "255.255.255.0"


def _auto_only(text: str) -> str:
    if text != "auto":
        raise ValueError(f"'{text}' is not supported: autoenum knows only 'address auto'")
    return text


def _network_address(text: str) -> str:
    return values.ipv4(text.split("/", 1)[0])


SETTINGS = {
    spec.name: spec
    for spec in (
        KeySpec("superclass", Shape.VALUE, "superclass of every host", values.name, "superclass"),
        KeySpec("numhosts", Shape.VALUE, "number of hosts", values.positive_int, "numhosts"),
        KeySpec("address", Shape.VALUE, "auto: number the interfaces", _auto_only, "address"),
        KeySpec("addresses", Shape.VALUES, "begin K: first host number"),
        KeySpec("net", Shape.VALUE, "network of the addresses", _network_address, "net"),
        KeySpec("netmask", Shape.VALUE, "netmask of the addresses", values.netmask, "netmask"),
        KeySpec("service_hosts", Shape.BLOCK, "service hosts, round robin"),
        KeySpec("prefix", Shape.VALUE, "host name prefix", values.name, "prefix"),
    )
}
BEGIN_KEY = KeySpec("begin", Shape.VALUE, "first host number", values.non_negative_int)


class AutoenumPlugin(Plugin):
    """Generates ``numhosts`` hosts inheriting one superclass; see the module docstring."""

    name = "autoenum"

    def expand(self, document: Document, settings: Statement, context: ExpandContext) -> Document:
        sink = context.sink
        groups = read_block(settings.block or (), SETTINGS, sink)
        fields = simple_fields(groups, SETTINGS, sink)
        for required in ("superclass", "numhosts"):
            if required not in groups:
                sink.error(settings.span, f"autoenum needs '{required}'")
        if "superclass" not in fields or "numhosts" not in fields:
            return document
        superclass_word = value_word(groups, "superclass")
        assert superclass_word is not None
        # An unknown superclass yields hosts anyway: resolve reports it once, at this word.
        body = context.superclass_body(fields["superclass"]) or ()
        begin = _begin(groups, context)
        addresses = _addresses(groups, fields, begin, context) if "address" in fields else None
        service_hosts = (
            words_of(groups["service_hosts"][0].block or ()) if "service_hosts" in groups else []
        )
        prefix = fields.get("prefix", fields["superclass"])
        prefix_word = value_word(groups, "prefix") or superclass_word
        generated: list[Statement] = []
        for index in range(1, fields["numhosts"] + 1):
            block: list[Statement] = [
                Statement(Word("superclass", settings.span), (superclass_word,))
            ]
            if service_hosts:
                where = service_hosts[(index - 1) % len(service_hosts)]
                block.append(Statement(Word("service_host", where.span), (where,)))
            if addresses is not None:
                block.extend(_numbered_interfaces(body, addresses[index - 1], fields, groups))
            name = Word(f"{prefix}{index}", prefix_word.span)
            generated.append(Statement(Word("host", settings.span), (name,), tuple(block)))
        return _with_hosts(document, generated, context)


def _begin(groups: Groups, context: ExpandContext) -> int:
    statements = groups.get("addresses")
    if not statements:
        return 1
    words = statements[0].values
    if len(words) != 2 or words[0].text != "begin":
        context.sink.error(words[0].span, "write: addresses begin NUMBER")
        return 1
    value = convert(BEGIN_KEY, words[1], context.sink)
    return 1 if value is INVALID else value


def _addresses(
    groups: Groups, fields: dict[str, Any], begin: int, context: ExpandContext
) -> list[str] | None:
    """The address of each host, or None (reported) when they do not fit the network."""
    if "net" not in fields:
        word = value_word(groups, "address")
        assert word is not None
        context.sink.error(word.span, "address auto needs the network: net A.B.C.0")
        return None
    mask = fields.get("netmask", DEFAULT_NETMASK)
    network = ipaddress.IPv4Network(f"{fields['net']}/{mask}", strict=False)
    first = int(network.network_address) + begin
    last = first + fields["numhosts"] - 1
    if begin < 1 or last >= int(network.broadcast_address):
        word = value_word(groups, "numhosts")
        assert word is not None
        context.sink.error(
            word.span,
            f"{fields['numhosts']} hosts from number {begin} do not fit in {network} "
            f"(last would be {ipaddress.IPv4Address(last)})",
        )
        return None
    return [str(ipaddress.IPv4Address(n)) for n in range(first, last + 1)]


def _numbered_interfaces(
    body: tuple[Statement, ...], address: str, fields: dict[str, Any], groups: Groups
) -> list[Statement]:
    """``network IF { address A; netmask M }`` for each superclass NIC without an address."""
    where = value_word(groups, "net") or value_word(groups, "address")
    assert where is not None
    span: Span = where.span
    numbered: list[Statement] = []
    for statement in body:
        if statement.key.text != "network" or statement.block is None or not statement.values:
            continue
        keys = {s.key.text: s for s in statement.block}
        given = keys.get("address")
        if given is not None and [w.text for w in given.values] != ["auto"]:
            continue
        block = [Statement(Word("address", span), (Word(address, span),))]
        if "netmask" not in keys:
            netmask = fields.get("netmask", DEFAULT_NETMASK)
            block.append(Statement(Word("netmask", span), (Word(netmask, span),)))
        numbered.append(Statement(statement.key, statement.values, tuple(block)))
    return numbered


def _with_hosts(document: Document, generated: list[Statement], context: ExpandContext) -> Document:
    """Append the generated hosts; a written host of the same name merges over its twin."""
    by_name = {host.values[0].text: host for host in generated}
    kept: list[Statement] = []
    for stanza in document.statements:
        twin = by_name.get(stanza.label or "") if stanza.key.text == "host" else None
        if twin is None or stanza.block is None:
            kept.append(stanza)
            continue
        merged = merge_statements(twin.block or (), stanza.block, context.policy)
        by_name[twin.values[0].text] = stanza.with_block(merged)
    return replace(document, statements=(*kept, *by_name.values()))

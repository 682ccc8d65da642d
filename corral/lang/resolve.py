"""Resolve a project tree: sort its stanzas, apply superclass inheritance and groups.

Input is a :class:`~corral.lang.tree.Document` whose includes and variables
are already expanded (and whose generator plugins already ran). Output is a
:class:`ResolvedTree`: the ``global`` stanza, and every host and switch with
its final list of statements, every ``superclass NAME`` reference replaced by
the merged body of that superclass, and for every host the superclasses it
inherits (its provenance, which Ansible inventories group hosts by).

Groups (:mod:`corral.lang.groups`) give their settings to their members. A
host's statements merge in this order, each later one winning: the
superclasses it names (in the order it names them), then the groups it is a
member of (in the order the groups are written; two of them setting a key
differently is an error unless the host sets it), then its own statements.

Merging (:func:`merge_statements`) is the MLN rule: blocks with the same key
and label (``network eth0``) merge recursively; a plain statement of the
inheriting stanza replaces every statement with the same key in the inherited
one. A :class:`MergePolicy` adds the two cases the language needs: keys that
exclude each other (``xen`` replaces an inherited ``vmware``) and blocks that
are lists (``runcmd { ... }``), replaced whole instead of merged line by line.

Words keep their spans through merging, so an error in an inherited value
points at the superclass text that holds it. Every problem is collected and
raised together as :class:`~corral.errors.SourceErrors`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from corral.errors import DiagnosticSink, Span
from corral.lang.groups import Conflicts, ResolvedGroup, groups_of_hosts, read_group
from corral.lang.tree import Document, Statement

TOP_LEVEL_STANZAS: tuple[str, ...] = ("global", "host", "switch", "superclass", "group")
INHERIT_KEY = "superclass"


def did_you_mean(word: str, known: Iterable[str]) -> str | None:
    """``"did you mean 'memory'?"`` for a near miss, None when nothing is close."""
    matches = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


@dataclass(frozen=True, slots=True)
class MergePolicy:
    """Which keys override each other and which blocks are replaced whole when merging."""

    exclusive: Mapping[str, str] = field(default_factory=dict)  # key -> shared slot name
    atomic_blocks: frozenset[str] = frozenset()

    def slot(self, statement: Statement) -> tuple[str, ...]:
        """The identity under which ``statement`` overrides or merges with another."""
        key = statement.key.text
        if statement.block is not None and key not in self.atomic_blocks:
            return ("block", key, statement.label or "")
        return ("plain", self.exclusive.get(key, key))


def merge_statements(
    base: tuple[Statement, ...], over: tuple[Statement, ...], policy: MergePolicy
) -> tuple[Statement, ...]:
    """``over`` inherits ``base``: same-identity blocks merge, ``over`` wins on the rest.

    Inherited statements keep their order; the inheriting stanza's new
    statements follow. A merged block takes the inheriting stanza's key word.
    """
    if not base:
        return over
    if not over:
        return base
    over_plain: set[tuple[str, ...]] = set()
    over_blocks: dict[tuple[str, ...], Statement] = {}
    for statement in over:
        identity = policy.slot(statement)
        if identity[0] == "plain":
            over_plain.add(identity)
        else:
            over_blocks.setdefault(identity, statement)
    merged: list[Statement] = []
    consumed: set[tuple[str, ...]] = set()
    for statement in base:
        identity = policy.slot(statement)
        if identity in over_plain:
            continue
        mine = over_blocks.get(identity)
        if mine is None or identity in consumed:
            merged.append(statement)
            continue
        consumed.add(identity)
        merged.append(
            mine.with_block(merge_statements(statement.block or (), mine.block or (), policy))
        )
    for statement in over:
        identity = policy.slot(statement)
        if identity in consumed and over_blocks.get(identity) is statement:
            continue
        merged.append(statement)
    return tuple(merged)


@dataclass(frozen=True, slots=True)
class ResolvedTree:
    """A project's stanzas after inheritance: what the model builder consumes."""

    path: str
    global_stanza: Statement | None
    hosts: tuple[Statement, ...]
    switches: tuple[Statement, ...]
    # host name -> every superclass it inherits, directly or not, in the order
    # they merge: a superclass's own superclasses before it, each once.
    superclasses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # every group, in the order written, and host name -> the groups it is in
    groups: tuple[ResolvedGroup, ...] = ()
    host_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class _Resolver:
    policy: MergePolicy
    sink: DiagnosticSink
    superclasses: dict[str, Statement] = field(default_factory=dict)
    # superclass name -> (its merged body, its lineage: its superclasses, then itself)
    resolved: dict[str, tuple[tuple[Statement, ...], tuple[str, ...]]] = field(
        default_factory=dict)

    def body_of(self, stanza: Statement, chain: tuple[str, ...] = ()) -> tuple[Statement, ...]:
        """``stanza``'s statements with its superclasses merged in (later ones win)."""
        return self.inherit(stanza, chain)[0]

    def inherit(
        self, stanza: Statement, chain: tuple[str, ...] = (),
        groups: tuple[ResolvedGroup, ...] = (),
    ) -> tuple[tuple[Statement, ...], tuple[str, ...]]:
        """``stanza``'s merged statements and the superclasses they came from, in
        merge order, each once. ``groups``' settings merge over the superclasses
        and under the stanza's own statements."""
        inherited: tuple[Statement, ...] = ()
        lineage: list[str] = []
        own: list[Statement] = []
        for statement in stanza.block or ():
            if statement.key.text != INHERIT_KEY:
                own.append(statement)
                continue
            if statement.block is not None or len(statement.values) != 1:
                self.sink.error(
                    statement.span,
                    "a superclass reference is 'superclass NAME' (superclass stanzas "
                    "are defined at the top level)",
                )
                continue
            parent, parents = self.superclass_body(statement, chain)
            inherited = merge_statements(inherited, parent, self.policy)
            lineage.extend(parents)
        for group in groups:
            inherited = merge_statements(inherited, group.settings, self.policy)
            lineage.extend(group.superclasses)
        return merge_statements(inherited, tuple(own), self.policy), tuple(dict.fromkeys(lineage))

    def superclass_body(
        self, reference: Statement, chain: tuple[str, ...]
    ) -> tuple[tuple[Statement, ...], tuple[str, ...]]:
        word = reference.values[0]
        name = word.text
        if name in self.resolved:
            return self.resolved[name]
        if name in chain:
            cycle = " -> ".join((*chain[chain.index(name) :], name))
            self.sink.error(word.span, f"superclass cycle: {cycle}")
            return (), ()
        definition = self.superclasses.get(name)
        if definition is None:
            self.sink.error(
                word.span,
                f"unknown superclass '{name}'",
                did_you_mean(name, self.superclasses),
            )
            return (), ()
        return self.resolve(name, definition, chain)

    def resolve(
        self, name: str, definition: Statement, chain: tuple[str, ...] = ()
    ) -> tuple[tuple[Statement, ...], tuple[str, ...]]:
        """Superclass ``name``'s merged body and lineage, remembered."""
        body, parents = self.inherit(definition, (*chain, name))
        self.resolved[name] = (body, (*parents, name))
        return self.resolved[name]


def resolve_document(document: Document, policy: MergePolicy) -> ResolvedTree:
    """Sort stanzas, check their shape and names are unique, apply superclasses.

    Raises :class:`~corral.errors.SourceErrors` listing every problem found.
    """
    sink = DiagnosticSink()
    resolver = _Resolver(policy, sink)
    global_stanza: Statement | None = None
    hosts: dict[str, Statement] = {}
    switches: dict[str, Statement] = {}
    group_stanzas: dict[str, Statement] = {}
    for stanza in document.statements:
        kind = stanza.key.text
        if kind not in TOP_LEVEL_STANZAS:
            sink.error(
                stanza.span,
                f"unknown stanza '{kind}': a project file holds global, host, switch, "
                "superclass and group stanzas",
                did_you_mean(kind, TOP_LEVEL_STANZAS),
            )
            continue
        if not _well_formed(stanza, sink):
            continue
        if kind == "global":
            if global_stanza is not None:
                sink.error(stanza.span, f"second global stanza (first at {global_stanza.span})")
            else:
                global_stanza = stanza
            continue
        table = {"host": hosts, "switch": switches, "superclass": resolver.superclasses,
                 "group": group_stanzas}[kind]
        name = stanza.values[0].text
        if name in table:
            sink.error(
                stanza.values[0].span,
                f"duplicate {kind} '{name}' (first defined at {table[name].values[0].span})",
            )
            continue
        table[name] = stanza
    groups = tuple(
        read_group(stanza, hosts, resolver.inherit, sink, did_you_mean)
        for stanza in group_stanzas.values()
    )
    memberships = groups_of_hosts(groups)
    conflicts = Conflicts(policy.slot)
    resolved_hosts: list[Statement] = []
    lineages: dict[str, tuple[str, ...]] = {}
    for name, host in hosts.items():
        mine = memberships.get(name, ())
        conflicts.check(name, _own_statements(host), mine)
        body, lineages[name] = resolver.inherit(host, groups=mine)
        resolved_hosts.append(host.with_block(body))
    conflicts.report(sink)
    resolved_switches = tuple(
        switch.with_block(resolver.body_of(switch)) for switch in switches.values()
    )
    for name, definition in resolver.superclasses.items():
        if name not in resolver.resolved:  # unused: still report its errors
            resolver.resolve(name, definition)
    sink.raise_if_any()
    return ResolvedTree(
        document.path, global_stanza, tuple(resolved_hosts), resolved_switches, lineages,
        groups, {host: tuple(g.name.text for g in mine) for host, mine in memberships.items()},
    )


def _own_statements(stanza: Statement) -> tuple[Statement, ...]:
    """What a stanza writes itself, without its superclass references."""
    return tuple(s for s in stanza.block or () if s.key.text != INHERIT_KEY)


def _well_formed(stanza: Statement, sink: DiagnosticSink) -> bool:
    kind = stanza.key.text
    if kind == "global":
        if stanza.values:
            sink.error(stanza.values[0].span, "the global stanza takes no name")
            return False
    elif len(stanza.values) != 1:
        where = stanza.values[1].span if stanza.values else stanza.span
        sink.error(where, f"a {kind} stanza is '{kind} NAME {{ ... }}' with exactly one name")
        return False
    if stanza.block is None:
        sink.error(
            stanza.span,
            f"{kind} needs a block: {kind} {stanza.label or ''} {{ ... }}".replace("  ", " "),
        )
        return False
    return True


def file_start(path: str) -> Span:
    """The position used for problems of a whole file (a missing global stanza)."""
    return Span(path, 1, 1)


def superclass_lookup(
    document: Document, policy: MergePolicy
) -> Callable[[str], tuple[Statement, ...] | None]:
    """``name -> merged body`` of the document's superclasses, for generator plugins.

    Problems found here are not reported: :func:`resolve_document` reports
    them later, once, with the rest.
    """
    resolver = _Resolver(policy, DiagnosticSink())
    for stanza in document.statements:
        if stanza.key.text == INHERIT_KEY and len(stanza.values) == 1 and stanza.block is not None:
            resolver.superclasses.setdefault(stanza.values[0].text, stanza)

    def body(name: str) -> tuple[Statement, ...] | None:
        if name not in resolver.superclasses:
            return None
        if name not in resolver.resolved:
            resolver.resolve(name, resolver.superclasses[name])
        return resolver.resolved[name][0]

    return body

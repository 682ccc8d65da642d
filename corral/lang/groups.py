"""Groups of hosts: ``group NAME { members H1 H2 ...; KEY VALUE ... }``.

A group gives its settings to every member, as if each member inherited a
superclass it did not name (lcfg-xen's virtual groups: one place to size a
cluster, and a change there reconfigures every member). A group may carry
what a superclass may carry, including ``superclass`` references and
``network IF { ... }`` blocks; ``members`` is its own key, and may be written
several times (the names add up).

Merge order for a host (corral.lang.resolve): the superclasses it names, then
its groups, then its own statements, each later one winning. A host in two
groups that set the same key to different values, and does not set the key
itself, is refused naming both groups: which one wins would otherwise depend
on where the groups happen to be written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from corral.errors import DiagnosticSink, Span
from corral.lang.tree import Statement, Word

MEMBERS_KEY = "members"

# A stanza's merged statements and the superclasses they came from.
Inherit = Callable[[Statement], tuple[tuple[Statement, ...], tuple[str, ...]]]
# A statement's identity when merging (corral.lang.resolve.MergePolicy.slot).
Slot = Callable[[Statement], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class ResolvedGroup:
    """A group with its members (in the order written) and its merged settings."""

    name: Word
    members: tuple[str, ...]
    settings: tuple[Statement, ...]
    superclasses: tuple[str, ...]  # what the settings inherit, in merge order


def read_group(
    stanza: Statement,
    hosts: Mapping[str, Statement],
    inherit: Inherit,
    sink: DiagnosticSink,
    did_you_mean: Callable[[str, Mapping[str, Statement]], str | None],
) -> ResolvedGroup:
    """The members and settings of one ``group`` stanza; bad members are reported
    (a name that is no host, a host listed twice, a missing member list)."""
    name = stanza.values[0]
    members: dict[str, Span] = {}
    settings: list[Statement] = []
    seen_members_key = False
    for statement in stanza.block or ():
        if statement.key.text != MEMBERS_KEY:
            settings.append(statement)
            continue
        seen_members_key = True
        if statement.block is not None or not statement.values:
            sink.error(statement.span, "members takes host names: members HOST...")
            continue
        for word in statement.values:
            if word.text in members:
                sink.error(
                    word.span,
                    f"host '{word.text}' is listed twice in group '{name.text}' "
                    f"(first at {members[word.text]})",
                )
            elif word.text not in hosts:
                sink.error(
                    word.span,
                    f"group '{name.text}': no host '{word.text}'",
                    did_you_mean(word.text, hosts),
                )
            else:
                members[word.text] = word.span
    if not seen_members_key:
        sink.error(stanza.span, f"group '{name.text}' names no members: members HOST...")
    body, superclasses = inherit(stanza.with_block(tuple(settings)))
    return ResolvedGroup(name, tuple(members), body, superclasses)


def groups_of_hosts(groups: tuple[ResolvedGroup, ...]) -> dict[str, tuple[ResolvedGroup, ...]]:
    """Host name -> the groups it belongs to, in the order the groups are written."""
    found: dict[str, list[ResolvedGroup]] = {}
    for group in groups:
        for member in group.members:
            found.setdefault(member, []).append(group)
    return {host: tuple(each) for host, each in found.items()}


@dataclass
class Conflicts:
    """Keys two groups set differently for hosts in both, collected over every host
    and reported once per pair of statements, listing the hosts they share."""

    slot: Slot
    found: dict[tuple[Span, Span, str, str, str], list[str]] = field(default_factory=dict)

    def check(
        self, host: str, own: tuple[Statement, ...], groups: tuple[ResolvedGroup, ...]
    ) -> None:
        """Record every key that two of ``host``'s groups set differently and that
        its ``own`` statements do not set (the host's own value would win)."""
        if len(groups) < 2:
            return
        decided = dict(_leaves(own, self.slot))
        first: dict[tuple[tuple[str, ...], ...], tuple[ResolvedGroup, Statement]] = {}
        for group in groups:
            for path, statement in _leaves(group.settings, self.slot):
                if path in decided:
                    continue
                earlier = first.setdefault(path, (group, statement))
                if earlier[0] is group or _text(earlier[1]) == _text(statement):
                    continue
                key = (statement.span, earlier[1].span, _describe(path, statement),
                       earlier[0].name.text, group.name.text)
                self.found.setdefault(key, []).append(host)

    def report(self, sink: DiagnosticSink) -> None:
        for (span, other, key, first, second), hosts in self.found.items():
            shown = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
            sink.error(
                span,
                f"groups '{first}' (at {other}) and '{second}' set '{key}' differently "
                f"for their common members ({shown})",
                "set it in those hosts, or in only one of the groups",
            )


def _leaves(
    statements: tuple[Statement, ...], slot: Slot, prefix: tuple[tuple[str, ...], ...] = ()
) -> Iterator[tuple[tuple[tuple[str, ...], ...], Statement]]:
    """Every plain statement with the path of merge identities that leads to it:
    what two merged stanzas can disagree on."""
    for statement in statements:
        identity = slot(statement)
        if identity[0] == "block":
            yield from _leaves(statement.block or (), slot, (*prefix, identity))
        else:
            yield (*prefix, identity), statement


def _text(statement: Statement) -> tuple[object, ...]:
    """What a statement says, without where it was written."""
    block = None if statement.block is None else tuple(_text(s) for s in statement.block)
    return statement.key.text, tuple(w.text for w in statement.values), block


def _describe(path: tuple[tuple[str, ...], ...], statement: Statement) -> str:
    """``memory``, or ``network eth0 address`` for a key inside a block."""
    blocks = [" ".join(part for part in identity[1:] if part) for identity in path[:-1]]
    return " ".join([*blocks, statement.key.text])

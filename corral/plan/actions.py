"""Actions a plan is made of, and how they read to a person.

An action is data, not behaviour: the operations layer executes it. Each one
says whether it can be applied to a running guest and whether it destroys
anything, so ``upgrade`` can refuse what needs ``--recreate`` before it
touches a single object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from corral.model import Host, Switch


class ActionKind(StrEnum):
    CREATE_SWITCH = "create-switch"
    UPDATE_SWITCH = "update-switch"
    START_SWITCH = "start-switch"
    REMOVE_SWITCH = "remove-switch"
    CREATE_HOST = "create-host"
    UPDATE_HOST = "update-host"
    RECREATE_HOST = "recreate-host"
    MIGRATE_HOST = "migrate-host"
    REMOVE_HOST = "remove-host"
    PRUNE_DISK = "prune-disk"


_SYMBOL = {
    ActionKind.CREATE_SWITCH: "+",
    ActionKind.CREATE_HOST: "+",
    ActionKind.UPDATE_SWITCH: "~",
    ActionKind.UPDATE_HOST: "~",
    ActionKind.START_SWITCH: "~",
    ActionKind.RECREATE_HOST: "!",
    ActionKind.MIGRATE_HOST: ">",
    ActionKind.REMOVE_SWITCH: "-",
    ActionKind.REMOVE_HOST: "-",
    ActionKind.PRUNE_DISK: "-",
}


@dataclass(frozen=True, slots=True)
class Change:
    """One field that differs: ``memory_mib 128 -> 256 (live)``."""

    field: str
    old: object
    new: object
    live: bool = False

    def describe(self) -> str:
        how = " (live)" if self.live else ""
        return f"{self.field}: {_show(self.old)} -> {_show(self.new)}{how}"


def _show(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    target: str  # host or switch name inside the project
    host: Host | None = None
    switch: Switch | None = None
    changes: tuple[Change, ...] = ()
    reason: str = ""

    disk: str | None = None  # the extra disk a prune-disk action deletes

    @property
    def destructive(self) -> bool:
        return self.kind in (
            ActionKind.RECREATE_HOST, ActionKind.REMOVE_HOST, ActionKind.PRUNE_DISK
        )

    def describe(self) -> str:
        if self.kind is ActionKind.PRUNE_DISK:
            return f"- disk {self.disk} of host {self.target}: delete ({self.reason})"
        noun = "switch" if "switch" in self.kind.value else "host"
        verb = self.kind.value.split("-")[0]
        head = f"{_SYMBOL[self.kind]} {noun} {self.target}: {verb}"
        if self.reason:
            head += f" ({self.reason})"
        lines = [head] + [f"    {c.describe()}" for c in self.changes]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Plan:
    """Ordered actions: switches before the hosts that use them, removals last."""

    project: str
    actions: tuple[Action, ...] = field(default_factory=tuple)
    # what the plan leaves alone on purpose, e.g. volumes of detached disks
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.actions

    def of_kind(self, *kinds: ActionKind) -> list[Action]:
        return [a for a in self.actions if a.kind in kinds]

    def describe(self) -> str:
        notes = "".join(f"\n  note: {n}" for n in self.notes)
        if self.empty:
            return f"project {self.project}: nothing to change{notes}"
        body = "\n".join(a.describe() for a in self.actions)
        return f"project {self.project}: {len(self.actions)} change(s)\n{body}{notes}"

"""What operations return: typed results, never prose.

The CLI renders them as text or prints :meth:`as_json`; the server returns
the same JSON. Shapes are documented in ``docs/operations.md``; keys may be
added, never removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from corral.plan import Action, Plan


class Applied(StrEnum):
    """When a planned change takes effect."""

    LIVE = "live"  # done on the running guest
    NEXT_BOOT = "next-boot"  # in the definition or seed; the guest sees it when it boots
    REBUILD = "rebuild"  # a new run copy was made


@dataclass(frozen=True, slots=True)
class ChangeResult:
    field: str
    old: Any
    new: Any
    applied: Applied

    def as_json(self) -> dict[str, Any]:
        return {"field": self.field, "old": _plain(self.old), "new": _plain(self.new),
                "applied": self.applied.value}


@dataclass(frozen=True, slots=True)
class ActionResult:
    """One action of the plan as carried out."""

    kind: str  # corral.plan.ActionKind value: create-host, update-host, remove-switch, ...
    target: str  # host or switch name
    reason: str = ""
    changes: tuple[ChangeResult, ...] = ()
    disk: str | None = None  # the extra disk of a prune-disk action

    @classmethod
    def of(cls, action: Action, live: frozenset[str] = frozenset()) -> ActionResult:
        """``action`` done, its changes in ``live`` applied live, the rest at next boot."""
        rebuild = action.kind.value == "recreate-host"
        return cls(action.kind.value, action.target, action.reason, tuple(
            ChangeResult(c.field, c.old, c.new,
                         Applied.REBUILD if rebuild
                         else Applied.LIVE if c.field in live else Applied.NEXT_BOOT)
            for c in action.changes
        ), action.disk)

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "reason": self.reason,
                "disk": self.disk, "changes": [c.as_json() for c in self.changes]}


@dataclass(frozen=True, slots=True)
class HostReadiness:
    """Whether a started guest became ready, and the reason seen."""

    host: str
    domain: str
    ready: bool
    reason: str
    seconds: float  # from the guest's own start to the verdict
    started_s: float = 0.0  # when it was started, counted from when booting began

    def as_json(self) -> dict[str, Any]:
        return {"host": self.host, "domain": self.domain, "ready": self.ready,
                "reason": self.reason, "seconds": self.seconds, "started_s": self.started_s}


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """``build``, ``up``, ``upgrade`` and ``start``: what changed, what started, who is ready."""

    operation: str
    project: str
    plan: Plan
    actions: tuple[ActionResult, ...] = ()
    started: tuple[str, ...] = ()  # host names started (or resumed) by this operation
    readiness: tuple[HostReadiness, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def notes(self) -> tuple[str, ...]:
        """What the plan left alone on purpose (volumes of dropped disks, ...)."""
        return self.plan.notes

    @property
    def ok(self) -> bool:
        """Every guest waited for is ready."""
        return all(r.ready for r in self.readiness)

    @property
    def changed(self) -> bool:
        return bool(self.actions or self.started)

    def as_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "project": self.project,
            "ok": self.ok,
            "changed": self.changed,
            "actions": [a.as_json() for a in self.actions],
            "started": list(self.started),
            "readiness": [r.as_json() for r in self.readiness],
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True, slots=True)
class HostStopped:
    host: str
    domain: str
    outcome: str  # clean, forced, already_off (corral.backends.ShutdownOutcome)

    def as_json(self) -> dict[str, Any]:
        return {"host": self.host, "domain": self.domain, "outcome": self.outcome}


@dataclass(frozen=True, slots=True)
class StopResult:
    project: str
    hosts: tuple[HostStopped, ...] = ()
    warnings: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"operation": "stop", "project": self.project,
                "hosts": [h.as_json() for h in self.hosts], "warnings": list(self.warnings)}


@dataclass(frozen=True, slots=True)
class Removed:
    """One object a removal deleted."""

    kind: str  # domain, disks, network
    name: str  # the libvirt name (domain, network) or the host whose disks went
    host: str  # the project's host or switch it belonged to
    service_host: str

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "host": self.host,
                "service_host": self.service_host}


@dataclass(frozen=True, slots=True)
class RemoveResult:
    project: str
    removed: tuple[Removed, ...] = ()
    warnings: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"operation": "remove", "project": self.project,
                "removed": [r.as_json() for r in self.removed],
                "warnings": list(self.warnings)}


@dataclass(frozen=True, slots=True)
class RemovalPreview:
    """What a removal would delete, for the confirmation question."""

    project: str
    domains: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VmResult:
    """A per-VM operation done: ``lab.web`` ``paused``."""

    target: str
    action: str
    outcome: str  # e.g. paused, clean, forced, "256 MiB"
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        return {"operation": f"vm {self.action}", "target": self.target,
                "outcome": self.outcome, "warnings": list(self.warnings)}


def plan_as_json(plan: Plan) -> dict[str, Any]:
    """A plan before it is applied: each change says whether it would be made live."""
    return {
        "project": plan.project,
        "empty": plan.empty,
        "notes": list(plan.notes),
        "actions": [
            {"kind": a.kind.value, "target": a.target, "reason": a.reason, "disk": a.disk,
             "changes": [{"field": c.field, "old": _plain(c.old), "new": _plain(c.new),
                          "live": c.live} for c in a.changes]}
            for a in plan.actions
        ],
    }


def _plain(value: Any) -> Any:
    """A JSON value for a change's old/new side: scalars as they are, sequences as
    lists, anything else as its text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list, frozenset, set)):
        return [_plain(v) for v in value]
    return str(value)

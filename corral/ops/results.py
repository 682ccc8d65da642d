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
class Failed:
    """Work that failed alone: a VM (``kind`` host), a switch or a whole service
    host, named with the service host at fault and its reason (libvirt's words,
    or no answer in time). A rerun once the host is back does it."""

    kind: str  # host, switch, service-host
    name: str  # the project's host or switch name, or the service host's
    service_host: str
    reason: str

    def describe(self) -> str:
        if self.kind == "service-host":
            return f"service host {self.name}: {self.reason}"
        return f"{self.kind} {self.name} (on service host {self.service_host}): {self.reason}"

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "service_host": self.service_host,
                "reason": self.reason}


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
    failed: tuple[Failed, ...] = ()  # what a failing service host kept from being done

    @property
    def notes(self) -> tuple[str, ...]:
        """What the plan left alone on purpose (volumes of dropped disks, ...)."""
        return self.plan.notes

    @property
    def partial(self) -> bool:
        """Some VMs failed with their service host; the rest was done."""
        return bool(self.failed)

    @property
    def ok(self) -> bool:
        """Nothing failed and every guest waited for is ready."""
        return not self.failed and all(r.ready for r in self.readiness)

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
            "partial": self.partial,
            "failed": [f.as_json() for f in self.failed],
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
    failed: tuple[Failed, ...] = ()

    @property
    def partial(self) -> bool:
        return bool(self.failed)

    def as_json(self) -> dict[str, Any]:
        return {"operation": "stop", "project": self.project,
                "hosts": [h.as_json() for h in self.hosts], "warnings": list(self.warnings),
                "partial": self.partial, "failed": [f.as_json() for f in self.failed]}


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
    failed: tuple[Failed, ...] = ()  # left in place: a rerun removes them

    @property
    def partial(self) -> bool:
        return bool(self.failed)

    def as_json(self) -> dict[str, Any]:
        return {"operation": "remove", "project": self.project,
                "removed": [r.as_json() for r in self.removed],
                "warnings": list(self.warnings),
                "partial": self.partial, "failed": [f.as_json() for f in self.failed]}


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


@dataclass(frozen=True, slots=True)
class VmBatchResult:
    """A per-VM operation on several VMs at once: each done or failed alone."""

    action: str
    done: tuple[VmResult, ...] = ()
    failed: tuple[Failed, ...] = ()  # kind host, name PROJECT.HOST
    warnings: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        return bool(self.failed)

    def as_json(self) -> dict[str, Any]:
        return {"operation": f"vm {self.action}", "done": [d.as_json() for d in self.done],
                "partial": self.partial, "failed": [f.as_json() for f in self.failed],
                "warnings": list(self.warnings)}


def plan_as_json(plan: Plan) -> dict[str, Any]:
    """A plan before it is applied: each change says whether it would be made live."""
    return {
        "project": plan.project,
        "empty": plan.empty,
        "notes": list(plan.notes),
        "actions": [
            {"kind": a.kind.value, "target": a.target, "reason": a.reason, "disk": a.disk,
             "service_host": a.host.service_host if a.host else None,
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


@dataclass(frozen=True, slots=True)
class MigrateResult:
    """``vm migrate``: where the VM went, how, and what became of the project file.

    ``mode`` is ``live`` (it kept running), ``cold`` (moved stopped; with
    ``--offline`` shut down first and started again on the target) or ``none``
    (it was there already). ``file_updated`` says whether the project file now
    names the new service host; ``file_note`` is the change made, or the line
    to change by hand.
    """

    target: str  # PROJECT.HOST
    source: str  # service host it left
    destination: str
    mode: str
    shared_storage: bool
    file: str | None
    file_updated: bool
    file_note: str
    warnings: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"operation": "vm migrate", "target": self.target, "source": self.source,
                "destination": self.destination, "mode": self.mode,
                "shared_storage": self.shared_storage, "file": self.file,
                "file_updated": self.file_updated, "file_note": self.file_note,
                "warnings": list(self.warnings)}

"""Every Corral VM of every project on every service host at once (DVHMS's ``vmctl``).

``corral stop --all``, ``suspend --all`` and ``start --all``: before a host
machine's maintenance, after its reboot. Each service host is surveyed
within a deadline; the VMs found are acted on in parallel, each one on its
own, so a VM or service host that fails fails alone: the result lists what
was done and what failed with the reason, and the caller's exit code says
the work was partial. Every project's part holds that project's lock (it
waits for an ``up`` or ``upgrade`` under way) and is recorded in the log.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corral.backends.base import Backend, DomainState, ObservedDomain
from corral.errors import CorralError, InvalidRequest
from corral.ops.deadline import describe_failure, each_within
from corral.ops.journal import project_lock, recorded
from corral.ops.observe import sight
from corral.ops.projects import ensure_networks_active
from corral.ops.session import Session

SURVEY_TIMEOUT_S = 10.0
ACTIONS = ("stop", "suspend", "start")


@dataclass(frozen=True, slots=True)
class VmDone:
    """What one VM's action came to: ``clean``, ``forced``, ``suspended``, ``started``..."""

    project: str
    host: str
    service_host: str
    outcome: str

    def as_json(self) -> dict[str, Any]:
        return {"project": self.project, "host": self.host,
                "service_host": self.service_host, "outcome": self.outcome}


@dataclass(frozen=True)
class FleetResult:
    """``done`` per VM; ``failed`` maps a VM (``PROJECT.HOST``) or a service host to why."""

    action: str
    done: tuple[VmDone, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        return bool(self.failed)

    def as_json(self) -> dict[str, Any]:
        return {"operation": f"{self.action} --all", "done": [d.as_json() for d in self.done],
                "failed": dict(self.failed)}


@dataclass(frozen=True)
class Fleet:
    """The Corral VMs found on every service host that answered."""

    vms: tuple[tuple[str, ObservedDomain], ...]  # (service host, domain)
    silent: dict[str, str]  # service host -> why it is left out


def survey(session: Session, timeout_s: float = SURVEY_TIMEOUT_S) -> Fleet:
    """Every Corral domain on every service host, each host within ``timeout_s``."""
    names = session.service_host_names()
    answers = each_within(lambda n: session.backend(n).observe(None).domains, names, timeout_s)
    vms: list[tuple[str, ObservedDomain]] = []
    silent: dict[str, str] = {}
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, tuple):
            vms += [(name, domain) for domain in answer]
        else:
            silent[f"service host {name}"] = describe_failure(answer)
    return Fleet(tuple(vms), silent)


def act_on_all(
    session: Session,
    action: str,
    *,
    timeout_s: float = 60.0,
    project: str | None = None,
    fleet: Fleet | None = None,
) -> FleetResult:
    """``stop`` (ACPI, forced after ``timeout_s``), ``suspend`` or ``start`` every VM
    (of every project, or of ``project``)."""
    if action not in ACTIONS:
        raise InvalidRequest(f"no action '{action}' for --all", hint=f"one of {', '.join(ACTIONS)}")
    if timeout_s < 0:
        raise InvalidRequest(f"timeout {timeout_s} s is negative")
    fleet = fleet or survey(session)
    chosen = [
        (sh, d) for sh, d in fleet.vms
        if _applies(action, d.state) and project in (None, d.project)
    ]
    by_project: dict[str, list[tuple[str, ObservedDomain]]] = defaultdict(list)
    for item in chosen:
        by_project[item[1].project].append(item)
    run = _STEPS[action]

    def one(item: tuple[str, ObservedDomain]) -> VmDone | tuple[str, str]:
        service_host, domain = item
        try:
            outcome = run(session.backend(service_host), domain.name, timeout_s)
        except CorralError as error:
            return f"{domain.project}.{domain.host}", error.message
        return VmDone(domain.project, domain.host, service_host, outcome)

    def project_part(project: str) -> list[VmDone | tuple[str, str]]:
        items = by_project[project]
        operation = f"{action} --all"
        with project_lock(session, project, operation), recorded(
            session, project, operation, project
        ):
            if action == "start":  # their switches first (down after a host's reboot)
                try:
                    ensure_networks_active(session, sight(session, project))
                except CorralError as error:
                    return [(f"{d.project}.{d.host}", error.message) for _, d in items]
            return session.parallel(one, items, where=lambda item: item[0])

    done: list[VmDone] = []
    failed = dict(fleet.silent)
    with session.reporter.progress(f"{action} every VM", len(chosen)):
        for results in session.parallel(project_part, sorted(by_project)):
            for result in results:
                if isinstance(result, VmDone):
                    done.append(result)
                else:
                    failed[result[0]] = result[1]
    return FleetResult(action, tuple(done), failed)


def _applies(action: str, state: DomainState) -> bool:
    if action == "start":
        return state in (DomainState.SHUTOFF, DomainState.SUSPENDED, DomainState.CRASHED)
    return state in (DomainState.RUNNING, DomainState.PAUSED)


def _stop(backend: Backend, domain: str, timeout_s: float) -> str:
    return backend.shutdown(domain, timeout_s).value


def _suspend(backend: Backend, domain: str, _timeout_s: float) -> str:
    backend.suspend(domain)
    return "suspended"


def _start(backend: Backend, domain: str, _timeout_s: float) -> str:
    backend.start(domain)  # restores a suspended domain from its managed save
    return "started"


_STEPS: dict[str, Callable[[Backend, str, float], str]] = {
    "stop": _stop, "suspend": _suspend, "start": _start,
}



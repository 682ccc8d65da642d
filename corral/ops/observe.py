"""Gathering what exists of a project across service hosts, for plan and status.

Every service host is asked at once, each within :data:`OBSERVE_TIMEOUT_S`.
A host that refuses, fails or does not answer in time is left out and named
with the reason (``unreachable``): what it holds is unknown, so the caller
fails the VMs placed there and goes on with the others, never hangs on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.backends.base import Observed
from corral.ops.deadline import describe_failure, each_within
from corral.ops.session import Session
from corral.plan import ObservedHost, ObservedProject, ObservedSwitch


@dataclass(frozen=True, slots=True)
class Sighting:
    """A project as seen on every service host: the planner's view and the raw observations."""

    project: ObservedProject
    raw: dict[str, Observed]
    unreachable: dict[str, str] = field(default_factory=dict)  # service host -> why

    def domain(self, host: str) -> ObservedHost | None:
        return self.project.hosts.get(host)


OBSERVE_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Observations:
    """What the service hosts that answered hold, and why the others are left out."""

    raw: dict[str, Observed]
    unreachable: dict[str, str]


def observe_each(
    session: Session, project: str | None, *, timeout_s: float = OBSERVE_TIMEOUT_S
) -> Observations:
    """``observe(project)`` on every configured service host at once, each within
    ``timeout_s``; a host that fails or does not answer is named, not raised."""
    names = session.service_host_names()
    answers = each_within(lambda n: session.backend(n).observe(project), names, timeout_s)
    raw: dict[str, Observed] = {}
    unreachable: dict[str, str] = {}
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, Observed):
            raw[name] = answer
        else:
            unreachable[name] = describe_failure(answer)
    return Observations(raw, unreachable)


def observe_everywhere(session: Session, project: str | None) -> dict[str, Observed]:
    """:func:`observe_each`, for readers that go on without a host that did not
    answer: each one left out is a warning."""
    seen = observe_each(session, project)
    for name, reason in seen.unreachable.items():
        session.warn(f"service host {name} left out: {reason}")
    return seen.raw


def sight(session: Session, project: str) -> Sighting:
    """The project on every service host that answered; the others in ``unreachable``."""
    found = observe_each(session, project)
    raw = found.raw
    hosts: dict[str, ObservedHost] = {}
    switches: dict[str, ObservedSwitch] = {}
    networks: dict[str, list[ObservedSwitch]] = {}
    disks: set[str] = set()
    data: dict[str, set[str]] = {}
    for service_host, seen in raw.items():
        for d in seen.domains:
            hosts[d.host] = ObservedHost(
                d.host, d.model_hash, d.state.value, service_host, d.name, d.model
            )
        for n in seen.networks:
            network = ObservedSwitch(
                n.switch, n.model_hash, n.active, service_host, n.name, n.model, n.site_bridge
            )
            switches.setdefault(n.switch, network)
            networks.setdefault(n.switch, []).append(network)
        disks |= {v.host for v in seen.volumes if v.kind == "disk"}
        for v in seen.volumes:
            if v.kind == "data" and v.disk:
                data.setdefault(v.host, set()).add(v.disk)
    orphans = frozenset(disks - set(hosts))
    data_disks = {host: frozenset(names) for host, names in data.items()}
    every = {switch: tuple(found) for switch, found in networks.items()}
    return Sighting(
        ObservedProject(project, hosts, switches, orphans, data_disks, every), raw,
        found.unreachable,
    )

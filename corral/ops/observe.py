"""Gathering what exists of a project across service hosts, for plan and status."""

from __future__ import annotations

from dataclasses import dataclass

from corral.backends.base import Observed
from corral.ops.session import Session
from corral.plan import ObservedHost, ObservedProject, ObservedSwitch


@dataclass(frozen=True, slots=True)
class Sighting:
    """A project as seen on every service host: the planner's view and the raw observations."""

    project: ObservedProject
    raw: dict[str, Observed]

    def domain(self, host: str) -> ObservedHost | None:
        return self.project.hosts.get(host)


def observe_everywhere(session: Session, project: str | None) -> dict[str, Observed]:
    """``observe(project)`` on every configured service host, in parallel."""
    names = session.service_host_names()
    found = session.parallel(lambda n: session.backend(n).observe(project), names)
    return dict(zip(names, found, strict=True))


def sight(session: Session, project: str) -> Sighting:
    raw = observe_everywhere(session, project)
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
    return Sighting(ObservedProject(project, hosts, switches, orphans, data_disks, every), raw)

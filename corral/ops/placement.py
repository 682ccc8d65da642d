"""Placing a project's hosts on service hosts, before its plan is made.

The model says who places each host (:class:`~corral.model.PlacedBy`); this
module decides where, from the observation the plan is made from, the site
config, and what the service hosts report, and hands the pure scheduler
(:mod:`corral.plan.placement`) what it needs:

* the file's ``service_host`` always wins (a change of it moves the host,
  which the plan shows as a rebuild);
* any other host that already runs somewhere stays there (as does one whose
  run copy an interrupted build left without a domain): stability does not
  depend on capacity, on the site's default or on the policy;
* a new host goes to the site's preset service host, or the scheduler picks
  one under the site's ``[defaults] placement`` policy.

Service hosts are only asked when there is something to decide: their
Corral VMs when a limit (``max_vcpus``, ``max_memory``, ``max_vms``) applies
to them, and also their CPUs and memory when the scheduler chooses among
them. A project whose every host is placed and whose service hosts have no
limits costs no call at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from corral.backends.base import DomainStats, HostInfo
from corral.model import PlacedBy, Project, Virt
from corral.ops.deadline import describe_failure, each_within
from corral.ops.observe import Sighting
from corral.ops.pending import PendingHost
from corral.ops.session import Session
from corral.plan import ActionKind, Plan
from corral.plan.placement import Limits, Load, Need, Request, ServiceHostState, place

ASK_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Placed:
    """The project with every host on a service host, and why each is there:
    ``file``, ``kept`` (it runs there), ``site`` (the site's default),
    ``only`` (the site's only service host) or the policy (``spread``/``pack``)."""

    project: Project
    why: dict[str, str]

    def annotate(self, plan: Plan) -> Plan:
        """The plan with each new host's service host, and why, in its reason."""
        return replace(plan, actions=tuple(
            replace(a, reason=_joined(self._where(a.target), a.reason))
            if a.kind is ActionKind.CREATE_HOST else a
            for a in plan.actions
        ))

    def _where(self, host: str) -> str:
        why = _WHY.get(self.why.get(host, ""), "")
        return f"on {self.project.hosts[host].placed_on}" + (f", {why}" if why else "")


_WHY = {
    "file": "named in the file",
    "site": "the site's default service host",
    "only": "the site's only service host",
    "spread": "chosen by the scheduler (spread)",
    "pack": "chosen by the scheduler (pack)",
}


def _joined(first: str, second: str) -> str:
    return f"{first}; {second}" if second else first


@dataclass(frozen=True, slots=True)
class _Reading:
    stats: list[DomainStats]
    info: HostInfo | None


def place_project(
    session: Session, project: Project, sighting: Sighting,
    recorded: Mapping[str, str | None] | None = None,
) -> Placed:
    """Every host of ``project`` on a service host (see the module doc); raises
    :class:`~corral.plan.placement.PlacementError` when they do not fit.

    ``recorded`` is where the last applied run put each host: one recorded on a
    service host that did not answer now stays there (and fails with it),
    rather than being scheduled anew beside its unseen domain."""
    site = session.site
    fixed: dict[str, str] = {}
    why: dict[str, str] = {}
    running = _where_they_are(sighting)
    for name, where in (recorded or {}).items():
        if where is not None and where in sighting.unreachable:
            running.setdefault(name, where)
    for name, host in project.hosts.items():
        if host.placed_by is PlacedBy.FILE:
            fixed[name], why[name] = host.placed_on, "file"
        elif name in running:
            fixed[name], why[name] = running[name], "kept"
        elif host.service_host is not None:
            fixed[name] = host.service_host
            why[name] = "site" if site.defaults.service_host is not None else "only"
    policy = site.defaults.placement
    decided = session.pending_placements.decided(project.name)
    for name in project.hosts:
        if name not in fixed and name in decided:  # placed before this up, in this session
            fixed[name], why[name] = decided[name], policy
    unplaced = [name for name in project.hosts if name not in fixed]
    limited = {
        where for where in fixed.values()
        if (config := site.service_host(where)) is not None
        and (config.max_vcpus, config.max_memory, config.max_vms) != (None, None, None)
    }
    candidates = site.schedulable() if unplaced else []
    asked = sorted(limited | set(candidates))
    if not asked and not unplaced:
        return _placed(project, fixed, why)
    states = _states(session, project.name, asked, facts=set(candidates))
    if unplaced:
        for state in states:
            if state.schedulable and state.unreachable is not None:
                session.warn(f"service host {state.name} is left out of placement: "
                             f"{state.unreachable}")
    needs = [Need(h.name, h.memory_mib, h.vcpus, h.vncdisplay, h.virt is Virt.LXC)
             for h in project.hosts.values()]
    chosen = place(Request(needs, fixed, states, policy))
    why.update({name: policy for name in unplaced})
    if unplaced or decided:
        session.pending_placements.record(project.name, [
            PendingHost(project.name, chosen[n.host], n) for n in needs
            if why.get(n.host) == policy])
    return _placed(project, chosen, why)


def _where_they_are(sighting: Sighting) -> dict[str, str]:
    """host -> the service host of its domain, else of its run copy."""
    found = {name: seen.service_host for name, seen in sighting.project.hosts.items()}
    for service_host, seen in sorted(sighting.raw.items()):
        for volume in seen.volumes:
            if volume.kind == "disk":
                found.setdefault(volume.host, service_host)
    return found


def _placed(project: Project, where: dict[str, str], why: dict[str, str]) -> Placed:
    hosts = {
        name: host if host.service_host == where[name]
        else host.model_copy(update={"service_host": where[name]})
        for name, host in project.hosts.items()
    }
    return Placed(project.model_copy(update={"hosts": hosts}), why)


def _states(
    session: Session, project: str, names: list[str], facts: set[str]
) -> list[ServiceHostState]:
    """Each service host's Corral VMs (and, for ``facts``, CPUs and memory), all
    asked at once; one that fails or does not answer in time is unreachable."""
    def read(name: str) -> _Reading:
        backend = session.backend(name)
        info = backend.host_info() if name in facts else None
        return _Reading(backend.domain_stats(None), info)

    answers = each_within(read, names, ASK_TIMEOUT_S)
    return [_state(session, name, project, name in facts, answer)
            for name, answer in zip(names, answers, strict=True)]


def _with_pending(state: ServiceHostState, stats: list[DomainStats],
                  pending: list[PendingHost]) -> ServiceHostState:
    """``state`` with the hosts other projects of this session placed there and have
    not defined yet (a host defined already is in ``stats``: counted once)."""
    there = {(s.project, s.host) for s in stats}
    waiting = [p.need for p in pending if (p.project, p.need.host) not in there]
    if not waiting:
        return state
    others, now = state.others, state.now
    for need in waiting:
        others, now = others.plus(need), now.plus(need)
    return replace(state, others=others, now=now)


def _state(
    session: Session, name: str, project: str, schedulable: bool, answer: object
) -> ServiceHostState:
    config = session.site.service_hosts.get(name)
    limits = Limits(config.max_vcpus, config.max_memory, config.max_vms) if config else Limits()
    if not isinstance(answer, _Reading):
        return ServiceHostState(name, limits, schedulable=schedulable,
                                unreachable=describe_failure(answer))
    info = answer.info
    return _with_pending(ServiceHostState(
        name, limits,
        others=_load(s for s in answer.stats if s.project != project),
        now=_load(answer.stats),
        cpus=info.cpus if info else None,
        memory_mib=info.memory_mib if info else None,
        schedulable=schedulable,
        containers=info is not None and "lxc" in info.virt_types,
    ), answer.stats, session.pending_placements.others(project, name))


def _load(stats: Iterable[DomainStats]) -> Load:
    load = Load()
    for row in stats:
        load = load.plus(Need(row.host, row.memory_mib or 0, row.vcpus or 0))
    return load

"""The placement scheduler: which service host each unplaced host goes to.

A pure function of its inputs (no libvirt, no clock, no randomness), so the
same hosts, service hosts and loads always give the same answer; the
operations layer (:mod:`corral.ops.placement`) gathers the inputs from the
site config and what each service host reports. The policy is documented in
docs/placement.md:

* hosts whose place is fixed (the file names it, or the host already runs
  somewhere) are never moved; their service hosts' limits are checked all
  the same, and a limit that the plan would newly exceed is an error;
* the others are placed largest first (memory, then vCPUs, then name), each
  on a candidate where it *fits*: its vCPUs at most the machine's CPUs, its
  memory within the memory that no Corral VM has taken yet, the site's
  ``max_vcpus``/``max_memory``/``max_vms`` kept, and no other host of the
  project there with the same ``vncdisplay``;
* ``spread`` takes the fitting candidate with the fewest Corral VMs, then
  the most unallocated memory, then the first name; ``pack`` the first
  fitting candidate by name.

A project that does not fit raises :class:`PlacementError` naming, for each
host left over, what every candidate lacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from corral.errors import ConflictError

Policy = Literal["spread", "pack"]


class PlacementError(ConflictError):
    """The hosts do not fit on the service hosts (or a limit would be exceeded)."""


@dataclass(frozen=True, slots=True)
class Need:
    """What one host of the project takes on its service host."""

    host: str
    memory_mib: int
    vcpus: int
    vncdisplay: int | None = None
    container: bool = False  # an lxc host: only a service host that runs containers takes it


@dataclass(frozen=True, slots=True)
class Load:
    """What Corral VMs take on a service host: how many, their memory and vCPUs."""

    vms: int = 0
    memory_mib: int = 0
    vcpus: int = 0

    def plus(self, need: Need) -> Load:
        return Load(self.vms + 1, self.memory_mib + need.memory_mib, self.vcpus + need.vcpus)


@dataclass(frozen=True, slots=True)
class Limits:
    """The site's caps on what a service host carries (``[service_hosts.X]``)."""

    max_vcpus: int | None = None
    max_memory_mib: int | None = None
    max_vms: int | None = None


@dataclass(frozen=True, slots=True)
class ServiceHostState:
    """One service host as the scheduler sees it.

    ``others`` is what Corral VMs of other projects take there; ``now`` what
    every Corral VM there takes before the plan (this project's as they run),
    so that a limit already exceeded is not blamed on an unrelated change.
    ``cpus``/``memory_mib`` are what the machine reports (None: not asked, or
    it did not answer, then ``unreachable`` says why).
    """

    name: str
    limits: Limits = Limits()
    others: Load = Load()
    now: Load = Load()
    cpus: int | None = None
    memory_mib: int | None = None
    schedulable: bool = True
    unreachable: str | None = None
    containers: bool = False  # runs lxc hosts (asked with cpus and memory)


@dataclass(frozen=True, slots=True)
class Request:
    """Everything one placement decides from."""

    needs: Sequence[Need]  # every host of the project
    fixed: Mapping[str, str]  # host -> service host it must stay on or go to
    service_hosts: Sequence[ServiceHostState]
    policy: Policy = "spread"


@dataclass(slots=True)
class _Tally:
    """A service host while hosts are being placed on it."""

    state: ServiceHostState
    load: Load
    vnc: dict[int, str] = field(default_factory=dict)  # display -> host using it

    @property
    def unallocated_mib(self) -> int:
        return (self.state.memory_mib or 0) - self.load.memory_mib

    def lacks(self, need: Need) -> str | None:
        """Why ``need`` does not fit here, or None when it does."""
        state, limits = self.state, self.state.limits
        if state.unreachable is not None:
            return f"{state.name} did not answer ({state.unreachable})"
        if need.container and not state.containers:
            return f"{state.name} runs no containers"
        if state.cpus is not None and need.vcpus > state.cpus:
            return f"{state.name} has {state.cpus} CPUs"
        if state.memory_mib is not None and need.memory_mib > self.unallocated_mib:
            return f"{state.name} has {max(self.unallocated_mib, 0)} MiB not taken by Corral VMs"
        if limits.max_memory_mib is not None and (
            self.load.memory_mib + need.memory_mib > limits.max_memory_mib
        ):
            room = max(limits.max_memory_mib - self.load.memory_mib, 0)
            return f"{state.name} has {room} MiB left of max_memory {limits.max_memory_mib} MiB"
        if limits.max_vcpus is not None and self.load.vcpus + need.vcpus > limits.max_vcpus:
            room = max(limits.max_vcpus - self.load.vcpus, 0)
            return f"{state.name} has {room} vCPUs left of max_vcpus {limits.max_vcpus}"
        if limits.max_vms is not None and self.load.vms + 1 > limits.max_vms:
            return f"{state.name} max_vms {limits.max_vms} reached"
        if need.vncdisplay is not None and need.vncdisplay in self.vnc:
            return (f"{state.name} has vncdisplay {need.vncdisplay} taken by host "
                    f"{self.vnc[need.vncdisplay]}")
        return None

    def take(self, need: Need) -> None:
        self.load = self.load.plus(need)
        if need.vncdisplay is not None:
            self.vnc.setdefault(need.vncdisplay, need.host)


def place(request: Request) -> dict[str, str]:
    """host -> service host for every host of ``request.needs``; fixed hosts
    where they are fixed, the others chosen by the policy.

    Raises :class:`PlacementError` with every problem: limits the fixed hosts
    would newly exceed, and each host that fits nowhere with what each
    candidate lacks.
    """
    tallies = {s.name: _Tally(s, s.others) for s in sorted(request.service_hosts,
                                                          key=lambda s: s.name)}
    chosen: dict[str, str] = {}
    for need in sorted(request.needs, key=lambda n: n.host):
        where = request.fixed.get(need.host)
        if where is None:
            continue
        chosen[need.host] = where
        tally = tallies.setdefault(where, _Tally(ServiceHostState(where), Load()))
        tally.take(need)
    problems = [p for t in tallies.values() for p in _exceeded(t, chosen, request.needs)]
    candidates = [t for t in tallies.values() if t.state.schedulable]
    unplaced = [n for n in request.needs if n.host not in chosen]
    for need in sorted(unplaced, key=lambda n: (-n.memory_mib, -n.vcpus, n.host)):
        fitting = [t for t in candidates if t.lacks(need) is None]
        if not fitting:
            problems.append(_does_not_fit(need, candidates))
            continue
        best = fitting[0] if request.policy == "pack" else min(
            fitting, key=lambda t: (t.load.vms, -t.unallocated_mib, t.state.name)
        )
        best.take(need)
        chosen[need.host] = best.state.name
    if problems:
        raise PlacementError(
            "the project does not fit on the service hosts:\n" + "\n".join(problems),
            hint="free room, raise the site's limits, add service hosts, or name a "
            "service_host for these hosts",
        )
    return chosen


def _exceeded(tally: _Tally, chosen: Mapping[str, str], needs: Sequence[Need]) -> list[str]:
    """Limits the hosts fixed on this service host would exceed, where the plan
    makes the total grow (a site that lowered a limit is not blamed on an
    unrelated change)."""
    state, load, limits = tally.state, tally.load, tally.state.limits
    hosts = ", ".join(sorted(n.host for n in needs if chosen.get(n.host) == state.name))
    found = []
    for label, planned, now, limit, unit, noun in (
        ("max_vms", load.vms, state.now.vms, limits.max_vms, "", "Corral VMs"),
        ("max_memory", load.memory_mib, state.now.memory_mib, limits.max_memory_mib, " MiB",
         "MiB"),
        ("max_vcpus", load.vcpus, state.now.vcpus, limits.max_vcpus, "", "vCPUs"),
    ):
        if limit is not None and planned > limit and planned > now:
            found.append(
                f"  service host {state.name}: {label} {limit}{unit} exceeded: it would "
                f"carry {planned} {noun} (this project's hosts there: {hosts})"
            )
    return found


def _does_not_fit(need: Need, candidates: Sequence[_Tally]) -> str:
    head = f"  host {need.host} (needs {need.memory_mib} MiB, {need.vcpus} vCPUs): "
    if not candidates:
        return head + "no service host may be chosen by the scheduler"
    return head + "; ".join(t.lacks(need) or t.state.name for t in candidates)


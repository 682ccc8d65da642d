"""What exists of one project, as the planner needs to see it.

The operations layer builds this from the backends' observations (libvirt
metadata alone, so planning works without Corral's database). ``model`` is the
host or switch model recorded in the object's metadata when Corral created it;
it lets the planner say *what* changed, not only *that* something did.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.model import Host, Switch


@dataclass(frozen=True, slots=True)
class ObservedHost:
    name: str
    model_hash: str
    state: str  # running, paused, suspended, shutoff, crashed, unknown
    service_host: str
    domain: str
    model: Host | None = None


@dataclass(frozen=True, slots=True)
class ObservedSwitch:
    name: str
    model_hash: str
    active: bool
    service_host: str
    network: str
    model: Switch | None = None
    site_bridge: str | None = None  # the site bridge it joins (a cross-host switch)


@dataclass(frozen=True, slots=True)
class ObservedProject:
    name: str
    hosts: dict[str, ObservedHost] = field(default_factory=dict)
    switches: dict[str, ObservedSwitch] = field(default_factory=dict)
    # run-copy volumes whose domain does not exist (an interrupted build)
    orphan_disks: frozenset[str] = frozenset()
    # host -> extra-disk volumes that exist (detached or attached), by disk name
    data_disks: dict[str, frozenset[str]] = field(default_factory=dict)
    # switch -> its network on every service host that has one (``switches``
    # holds the first of them); a cross-host switch has several
    switch_networks: dict[str, tuple[ObservedSwitch, ...]] = field(default_factory=dict)

    def networks_of(self, switch: str) -> tuple[ObservedSwitch, ...]:
        """Every network of ``switch``, one per service host."""
        found = self.switch_networks.get(switch)
        if found is not None:
            return found
        first = self.switches.get(switch)
        return (first,) if first is not None else ()

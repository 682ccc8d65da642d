"""Where each switch lives: on which service hosts, and joined how.

A switch exists where the hosts attached to it run. When they all run on one
service host, the switch is that host's own libvirt network (its own bridge,
address, DHCP, NAT, as the file says), exactly as for a project on one
machine. When they run on several, one LAN must reach all of them: on each
of those service hosts the switch is a network forwarding onto the host's
*site bridge* (``site_bridge`` in the site config), a bridge joined at layer
2 to the site bridges of the other service hosts. Corral never splits a LAN
into separate ones silently, so a switch that would need a service host
without a site bridge is refused, naming the service hosts, their VMs and
the fix.

What libvirt adds to a network (a host-side address, DHCP through dnsmasq,
NAT or routing) lives on one service host's own bridge and cannot be carried
across hosts through a plain bridge; Corral runs nothing of its own on
service hosts. So a switch that spans hosts may not have ``address`` (nor
``nat``/``route``, which need one): its guests use static addresses, which
their seeds set. ``bridge NAME`` switches already name a host bridge that is
expected on every service host; they are left as they are.

Everything here is pure: the project (with every host's service host
settled), the site's bridges and the default service host in; spans,
diagnostics and warnings out. Planning uses the spans to show a switch that
becomes cross-host (or single-host again); applying uses them to build the
networks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from corral.errors import Diagnostic, Span
from corral.model import Project, Switch, SwitchMode


@dataclass(frozen=True, slots=True)
class SwitchSpan:
    """The service hosts a switch's networks are on, and the site bridge each
    joins (None: the host's own network, the switch is on that host alone)."""

    switch: str
    places: Mapping[str, str | None]

    @property
    def service_hosts(self) -> tuple[str, ...]:
        return tuple(sorted(self.places))

    @property
    def crosses(self) -> bool:
        """True when the switch's networks join site bridges (several service hosts)."""
        return any(bridge is not None for bridge in self.places.values())

    def site_bridge(self, service_host: str) -> str | None:
        return self.places.get(service_host)

    def describe(self) -> str:
        return describe_places(self.places)


def describe_places(places: Mapping[str, str | None]) -> str:
    """``h1`` for a switch on one host, ``h1, h2 through site bridge br0`` across
    hosts (``h1 (br0), h2 (br1)`` when their bridges have different names)."""
    hosts = sorted(places)
    bridges = {places[h] for h in hosts}
    if bridges == {None}:
        return ", ".join(hosts)
    if len(bridges) == 1:
        return f"{', '.join(hosts)} through site bridge {bridges.pop()}"
    return ", ".join(f"{h} ({places[h] or 'own bridge'})" for h in hosts)


def switch_placement(project: Project, default: str) -> dict[str, set[str]]:
    """Service hosts each switch must exist on: where its hosts run; a switch no
    host uses yet goes where its ``service_host`` says, else on ``default``."""
    where: dict[str, set[str]] = defaultdict(set)
    for host in project.hosts.values():
        for nic in host.interfaces:
            if nic.switch:
                where[nic.switch].add(host.placed_on)
    for name, switch in project.switches.items():
        if not where[name]:
            where[name].add(switch.service_host or default)
    return where


def switch_spans(
    project: Project, site_bridges: Mapping[str, str | None], default: str
) -> dict[str, SwitchSpan]:
    """Every switch of the project with its places.

    ``site_bridges`` maps each service host of the site to its site bridge
    (None: it has none). A switch on several service hosts joins each one's
    site bridge; where one is missing the place says None and
    :func:`span_problems` refuses it. ``bridge NAME`` switches keep their
    own bridge everywhere.
    """
    spans = {}
    for name, hosts in switch_placement(project, default).items():
        switch = project.switches.get(name)
        if switch is None:
            continue  # an interface naming an unknown switch: the model refuses it
        across = len(hosts) > 1 and switch.mode is not SwitchMode.BRIDGE
        spans[name] = SwitchSpan(
            name, {h: site_bridges.get(h) if across else None for h in sorted(hosts)}
        )
    return spans


def vms_by_service_host(project: Project, switch: str) -> dict[str, list[str]]:
    """The hosts (VMs) attached to ``switch``, by service host."""
    found: dict[str, list[str]] = defaultdict(list)
    for host in sorted(project.hosts.values(), key=lambda h: h.name):
        if any(nic.switch == switch for nic in host.interfaces):
            found[host.placed_on].append(host.name)
    return found


def _who(project: Project, switch: str) -> str:
    vms = vms_by_service_host(project, switch)
    return "; ".join(f"{sh}: {', '.join(names)}" for sh, names in sorted(vms.items()))


def span_problems(
    project: Project, site_bridges: Mapping[str, str | None], default: str
) -> list[Diagnostic]:
    """Why a switch cannot span its service hosts, one diagnostic per switch and
    reason, at the switch's position: a service host without a site bridge, or
    an address (DHCP, NAT, routing) that libvirt can give one host's bridge only."""
    problems = []
    for name, hosts in sorted(switch_placement(project, default).items()):
        switch = project.switches.get(name)
        if switch is None or len(hosts) < 2 or switch.mode is SwitchMode.BRIDGE:
            continue
        listed = ", ".join(sorted(hosts))
        missing = sorted(h for h in hosts if not site_bridges.get(h))
        if missing:
            problems.append(Diagnostic(
                _span(switch),
                f"switch {name} connects VMs on service hosts {listed} ({_who(project, name)}),"
                f" but {_and(missing)} {'has' if len(missing) == 1 else 'have'} no site_bridge:"
                " its VMs would sit on separate LANs",
                f"set site_bridge = \"BRIDGE\" in [service_hosts.{missing[0]}] of the site "
                "config (a bridge joined at layer 2 to the other service hosts' site bridges),"
                f" or place every VM on switch {name} on one service host (service_host NAME)",
            ))
        if switch.address:
            extra = f" and {switch.mode.value}" if switch.mode in (
                SwitchMode.NAT, SwitchMode.ROUTE) else ""
            problems.append(Diagnostic(
                _span(switch),
                f"switch {name} has address {switch.address} (a host-side address, DHCP"
                f"{extra}), which libvirt provides on one service host's own bridge only, and"
                f" its VMs sit on service hosts {listed} ({_who(project, name)}): across"
                " service hosts a switch is a plain layer-2 LAN through the site bridge",
                "drop address (and nat, route, dhcp) and give its interfaces static addresses"
                f" with a netmask, or place every VM on switch {name} on one service host",
            ))
    return problems


def shared_segments(spans: Mapping[str, SwitchSpan]) -> list[str]:
    """Warnings for cross-host switches that meet on one site bridge: a site
    bridge is one layer-2 segment, so such switches are one LAN in fact."""
    by_bridge: dict[str, set[str]] = defaultdict(set)
    for span in spans.values():
        for bridge in span.places.values():
            if bridge is not None:
                by_bridge[bridge].add(span.switch)
    return [
        f"switches {_and(sorted(names))} all cross service hosts through site bridge {bridge}:"
        " they share one layer-2 segment; give their interfaces addresses in different subnets"
        for bridge, names in sorted(by_bridge.items())
        if len(names) > 1
    ]


def _and(names: list[str]) -> str:
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _span(switch: Switch) -> Span:
    origin = switch.origin
    if origin is None:
        return Span("<project>", 1, 1)
    return Span(origin.file, origin.line, origin.column)

"""The interfaces of vmgen machines as Corral ``network`` blocks and switches.

Interfaces that name one ``switch`` (by default ``lan``) sit on one Corral
switch, so a file of several machines keeps its topology. A switch needs a
host-side address when it does NAT or routing, or when one of its interfaces
asks for DHCP (Corral serves it there): the guests' gateway when an
interface gives one on its network, else the ``.1`` of the first static
address's network, else a private network of its own; the address is said in
a comment. A ``bridge`` interface attaches to an existing host bridge.
Everything the switch's network cannot hold (an address outside it, one
taken twice, a repeated MAC) is warned at its line, and the interface falls
back to what Corral can do (DHCP, a derived MAC).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from corral.convert.result import Warnings
from corral.convert.vmgen_keys import Setting, Settings
from corral.convert.writer import Stmt, block, stmt

DEFAULT_SWITCH = "lan"
DEFAULT_MODE = "nat"
DEFAULT_BRIDGE = "br0"
ASSUMED_PREFIX = 24
_FALLBACK = "10.20.{index}.1/24"


@dataclass(slots=True)
class Nic:
    """One interface of one machine, as its settings say it."""

    host: str
    name: str
    line: int
    switch: str = DEFAULT_SWITCH
    mode: str | None = None  # nat, route, isolated; None: the switch's
    bridge: str | None = None
    ip: ipaddress.IPv4Address | None = None  # None: DHCP
    prefix: int | None = None
    gateway: Setting | None = None
    default_gateway: Setting | None = None  # the [network] section's
    mac: Setting | None = None
    took_default_gateway: bool = False
    address_line: int = 0
    body: list[Stmt] = field(default_factory=list)


def nic(host: str, name: str, line: int, keys: Settings, default_gateway: Setting | None,
        warnings: Warnings) -> Nic:
    """The interface ``name`` of ``host`` from its section's settings."""
    out = Nic(host, name, line, gateway=keys.get("gateway"), default_gateway=default_gateway,
              mac=keys.get("mac"))
    mode, bridge = keys.get("mode"), keys.get("bridge")
    out.mode = mode.value if mode is not None and mode.value not in ("dhcp", "static") else None
    if bridge is not None and out.mode not in (None, "bridge"):
        warnings.add(bridge.line, f"{host} {name}: bridge {bridge.value} is not carried over: "
                     f"the mode is {out.mode}")
    elif bridge is not None or out.mode == "bridge":
        out.bridge = bridge.value if bridge is not None else DEFAULT_BRIDGE
        if bridge is None and mode is not None:
            warnings.add(mode.line, f"{host} {name}: mode bridge names no bridge: "
                         f"{DEFAULT_BRIDGE} is assumed")
        out.mode = "bridge"
    switch = keys.get("switch")
    if switch is not None and out.bridge is not None:
        warnings.add(switch.line, f"{host} {name}: switch {switch.value} is not carried over: "
                     f"the interface is bridged to {out.bridge}")
    elif switch is not None:
        out.switch = switch.value
    _read_address(out, keys, mode, warnings)
    return out


def _read_address(out: Nic, keys: Settings, mode: Setting | None, warnings: Warnings) -> None:
    address, netmask = keys.get("address"), keys.get("netmask")
    if isinstance(address.value if address else None, ipaddress.IPv4Interface):
        assert address is not None
        out.ip, out.address_line = address.value.ip, address.line
        if "/" in address.text:
            out.prefix = address.value.network.prefixlen
    if mode is not None and mode.value in ("dhcp", "static"):
        if mode.value == "dhcp" and out.ip is not None:
            warnings.add(mode.line, f"{out.host} {out.name}: mode dhcp contradicts the static "
                         f"address {out.ip}: the static address is kept")
        if mode.value == "static" and out.ip is None:
            warnings.add(mode.line, f"{out.host} {out.name}: mode static gives no address: "
                         "DHCP instead")
    if netmask is not None:
        prefix = ipaddress.IPv4Network(f"0.0.0.0/{netmask.value}").prefixlen
        if out.prefix is not None and prefix != out.prefix:
            warnings.add(netmask.line, f"{out.host} {out.name}: netmask {netmask.value} "
                         f"contradicts the address's /{out.prefix}: /{out.prefix} is kept")
        elif out.ip is None:
            warnings.add(netmask.line, f"{out.host} {out.name}: netmask without a static "
                         "address: not carried over")
        else:
            out.prefix = prefix
    if out.gateway is not None and out.ip is None:
        warnings.add(out.gateway.line, f"{out.host} {out.name}: gateway without a static "
                     "address: not carried over (DHCP gives one)")
        out.gateway = None


def wire(nics: list[Nic], warnings: Warnings) -> list[Stmt]:
    """Each interface's ``network`` body, and the switches they share."""
    macs: dict[str, str] = {}
    for item in nics:
        item.body = [stmt("bridge", item.bridge) if item.bridge else stmt("switch", item.switch)]
        if item.mac is not None:
            owner = macs.setdefault(item.mac.value, f"{item.host} {item.name}")
            if owner != f"{item.host} {item.name}":
                warnings.add(item.mac.line, f"{item.host} {item.name}: MAC {item.mac.value} "
                             f"is also {owner}'s: Corral derives one")
            else:
                item.body.append(stmt("mac", item.mac.value))
    for item in nics:
        if item.bridge is not None:
            item.body += _static(item, None, warnings)
    by_switch: dict[str, list[Nic]] = {}
    for item in nics:
        if item.bridge is None:
            by_switch.setdefault(item.switch, []).append(item)
    return [_switch(name, members, index, warnings)
            for index, (name, members) in enumerate(by_switch.items())]


def _switch(name: str, members: list[Nic], index: int, warnings: Warnings) -> Stmt:
    """The switch ``name``: its mode (the first interface's that says one), its
    address when it needs one; each member's address checked against it."""
    mode = next((m.mode for m in members if m.mode), DEFAULT_MODE)
    first = next((m for m in members if m.mode), None)
    for member in members:
        if member.mode and member.mode != mode and first is not None:
            warnings.add(member.line, f"{member.host} {member.name}: switch {name} is {mode} "
                         f"({first.host} {first.name}, line {first.line}): mode "
                         f"{member.mode} is not carried over")
    _unique_addresses(name, members, warnings)
    needs = mode in ("nat", "route") or any(m.ip is None for m in members)
    if not needs:
        for member in members:
            member.body += _static(member, None, warnings)
        return block(["switch", name], [], comments=[
            "An isolated network of the vmgen file: its hosts' addresses are static."])
    address, why = _host_side(members, index)
    for member in members:
        member.body += _static(member, address, warnings)
    body = [stmt(mode)] if mode in ("nat", "route") else []
    body.append(stmt("address", str(address)))
    return block(["switch", name], body, comments=[
        f"The {mode} network of the vmgen file; Corral serves DHCP on it.",
        f"Its address is {why}."])


def _unique_addresses(name: str, members: list[Nic], warnings: Warnings) -> None:
    seen: dict[ipaddress.IPv4Address, Nic] = {}
    for member in members:
        if member.ip is None:
            continue
        other = seen.setdefault(member.ip, member)
        if other is not member:
            warnings.add(member.address_line, f"{member.host} {member.name}: address "
                         f"{member.ip} is also {other.host} {other.name}'s on switch {name}: "
                         "DHCP instead")
            member.ip = None


def _gateway(member: Nic) -> Setting | None:
    """The interface's gateway: its own, else the [network] one when it is on
    the interface's network."""
    if member.gateway is not None or member.ip is None or member.default_gateway is None:
        return member.gateway
    network = ipaddress.IPv4Interface(f"{member.ip}/{member.prefix or ASSUMED_PREFIX}").network
    if ipaddress.IPv4Address(member.default_gateway.value) in network:
        member.took_default_gateway = True
        return member.default_gateway
    return None


def _host_side(members: list[Nic], index: int) -> tuple[ipaddress.IPv4Interface, str]:
    """The switch's address and why it is that one."""
    statics = [m for m in members if m.ip is not None]
    for member in statics:
        gateway = _gateway(member)
        if gateway is None:
            continue
        side = ipaddress.IPv4Interface(f"{gateway.value}/{member.prefix or ASSUMED_PREFIX}")
        if member.ip in side.network and member.ip != side.ip and _usable(side):
            return side, f"the gateway {member.host} {member.name} gives (line {gateway.line})"
    if statics:
        first = statics[0]
        network = ipaddress.IPv4Interface(f"{first.ip}/{first.prefix or ASSUMED_PREFIX}").network
        taken = {m.ip for m in statics}
        for candidate in (network.network_address + 1, network.broadcast_address - 1):
            if candidate not in taken and candidate in network:
                return (ipaddress.IPv4Interface(f"{candidate}/{network.prefixlen}"),
                        f"assumed in the network of {first.host} {first.name}'s address")
    return (ipaddress.IPv4Interface(_FALLBACK.format(index=index)),
            "assumed: the file gives no address on it")


def _usable(side: ipaddress.IPv4Interface) -> bool:
    """An address a switch may take: not its network's network or broadcast address."""
    return side.ip not in (side.network.network_address, side.network.broadcast_address)


def _static(member: Nic, side: ipaddress.IPv4Interface | None,
            warnings: Warnings) -> list[Stmt]:
    """The address statements of an interface: on a switch with an address the
    address must be one of its network's (the netmask is the switch's); else the
    interface's own netmask, /24 assumed when it has none."""
    if member.ip is None:
        return [stmt("address", "dhcp")]
    if side is not None:
        network = side.network
        if member.ip not in network or member.ip in (side.ip, network.network_address,
                                                     network.broadcast_address):
            warnings.add(member.address_line, f"{member.host} {member.name}: address "
                         f"{member.ip} is not a free address of switch {member.switch}'s "
                         f"network {network}: DHCP instead")
            return [stmt("address", "dhcp")]
        if member.prefix is not None and member.prefix != network.prefixlen:
            warnings.add(member.address_line, f"{member.host} {member.name}: /{member.prefix} "
                         f"is not switch {member.switch}'s /{network.prefixlen}: the switch's "
                         "netmask is used")
        return [stmt("address", str(member.ip)), *_gateway_stmt(member, network, warnings)]
    prefix = member.prefix
    if prefix is None:
        prefix = ASSUMED_PREFIX
        warnings.add(member.address_line, f"{member.host} {member.name}: address {member.ip} "
                     f"has no netmask: /{ASSUMED_PREFIX} is assumed")
    network = ipaddress.IPv4Interface(f"{member.ip}/{prefix}").network
    return [stmt("address", str(member.ip)), stmt("netmask", str(prefix)),
            *_gateway_stmt(member, network, warnings)]


def _gateway_stmt(member: Nic, network: ipaddress.IPv4Network,
                  warnings: Warnings) -> list[Stmt]:
    gateway = _gateway(member)
    if gateway is None:
        return []
    address = ipaddress.IPv4Address(gateway.value)
    if address not in network or address in (member.ip, network.network_address,
                                              network.broadcast_address):
        warnings.add(gateway.line, f"{member.host} {member.name}: gateway {address} is not "
                     f"another host address of {network}: not carried over")
        return []
    return [stmt("gateway", str(address))]

"""Libvirt network XML for a switch, built with lxml.

A switch becomes one libvirt network named ``PROJECT-SWITCH``:

* isolated (default): a bridge with no address and no forwarding, a plain L2 LAN;
* ``address A.B.C.D/P``: the bridge gets that address, and DHCP serves a range
  on it (below), plus a fixed lease for every interface with a static address
  on the switch (``StaticLease``);
* ``nat`` / ``route``: the same, forwarded through the host (an address is required);
* ``bridge NAME``: ``<forward mode='bridge'/>`` onto an existing host bridge;
  libvirt runs no DHCP there.

The DHCP range rule: the dynamic range is the upper half of the addresses
above the host address, up to the last usable address of the subnet. For
``10.0.0.1/24`` that is ``10.0.0.128``-``10.0.0.254``, leaving
``10.0.0.2``-``10.0.0.127`` for hosts with static addresses. dnsmasq never
hands a reserved static address to another MAC, wherever it lies. A subnet
too small for a range (``/31``, ``/32``, host address last) gets static leases only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from lxml import etree

from corral.backends.base import StaticLease
from corral.backends.libvirt import names
from corral.backends.libvirt.metadata import NetworkMark, encode_network_mark, switch_model_json
from corral.errors import ConfigError
from corral.model import Switch, SwitchMode


def parse_address(switch: Switch) -> ipaddress.IPv4Interface | None:
    """The switch's ``address`` as host address + prefix; ConfigError when malformed."""
    if not switch.address:
        return None
    try:
        iface = ipaddress.IPv4Interface(switch.address)
    except ValueError as exc:
        raise ConfigError(
            f"switch {switch.name}: address '{switch.address}' is not A.B.C.D/P"
        ) from exc
    if "/" not in switch.address:
        raise ConfigError(
            f"switch {switch.name}: address '{switch.address}' needs a prefix length",
            hint="for example 10.0.0.1/24",
        )
    return iface


def dhcp_range(iface: ipaddress.IPv4Interface) -> tuple[str, str] | None:
    """The dynamic DHCP range for a host address (the module's rule), or None."""
    net = iface.network
    if net.num_addresses < 4:
        return None
    last = int(net.broadcast_address) - 1
    host = int(iface.ip)
    start = host + 1 + (last - host) // 2
    if start > last or host >= last:
        return None
    return str(ipaddress.IPv4Address(start)), str(ipaddress.IPv4Address(last))


def lease_element(lease: StaticLease) -> etree._Element:
    """``<host mac ip name/>`` for a static DHCP entry."""
    return etree.Element("host", mac=lease.mac.lower(), ip=lease.ip, name=lease.hostname)


def lease_xml(lease: StaticLease) -> str:
    return etree.tostring(lease_element(lease), encoding="unicode")


def build_network(
    project: str, switch: Switch, leases: Iterable[StaticLease] = ()
) -> etree._Element:
    """The ``<network>`` element for ``switch`` of ``project``."""
    root = etree.Element("network")
    etree.SubElement(root, "name").text = names.network_name(project, switch.name)
    iface = parse_address(switch)
    if switch.mode is SwitchMode.BRIDGE:
        if not switch.bridge:
            raise ConfigError(f"switch {switch.name}: bridge mode needs 'bridge NAME'")
        etree.SubElement(root, "forward", mode="bridge")
        etree.SubElement(root, "bridge", name=switch.bridge)
    else:
        if switch.mode in (SwitchMode.NAT, SwitchMode.ROUTE):
            if iface is None:
                raise ConfigError(
                    f"switch {switch.name}: {switch.mode.value} mode needs an address",
                    hint="for example: address 10.0.0.1/24",
                )
            etree.SubElement(root, "forward", mode=switch.mode.value)
        bridge = names.bridge_name(project, switch.name)
        etree.SubElement(root, "bridge", name=bridge, stp="on", delay="0")
    mark = NetworkMark(project, switch.name, switch.model_hash(), switch_model_json(switch))
    etree.SubElement(root, "portgroup", name=encode_network_mark(mark))
    if iface is not None and switch.mode is not SwitchMode.BRIDGE:
        root.append(_ip_element(iface, switch.dhcp, leases))
    return root


def _ip_element(
    iface: ipaddress.IPv4Interface, dhcp: bool, leases: Iterable[StaticLease]
) -> etree._Element:
    ip = etree.Element("ip", address=str(iface.ip), prefix=str(iface.network.prefixlen))
    # A fixed address outside the subnet could never be served here; libvirt refuses it.
    hosts = sorted(
        (lease for lease in leases if _in_subnet(lease.ip, iface.network)),
        key=lambda lease: lease.mac,
    )
    span = dhcp_range(iface) if dhcp else None
    if span or hosts:
        dhcp_el = etree.SubElement(ip, "dhcp")
        if span:
            etree.SubElement(dhcp_el, "range", start=span[0], end=span[1])
        for lease in hosts:
            dhcp_el.append(lease_element(lease))
    return ip


def _in_subnet(ip: str, network: ipaddress.IPv4Network) -> bool:
    try:
        return ipaddress.IPv4Address(ip) in network
    except ValueError:
        return False


def servable_leases(root: etree._Element, leases: Iterable[StaticLease]) -> set[StaticLease]:
    """The leases a network (parsed XML) can serve: those inside its subnet."""
    ip = root.find("ip")
    if ip is None:
        return set()
    network = ipaddress.IPv4Interface(f"{ip.get('address')}/{ip.get('prefix', '24')}").network
    return {lease for lease in leases if _in_subnet(lease.ip, network)}


def static_leases_of(root: etree._Element) -> set[StaticLease]:
    """The static DHCP entries a network XML holds."""
    return {
        StaticLease(h.get("mac", "").lower(), h.get("ip", ""), h.get("name", ""))
        for h in root.iterfind("ip/dhcp/host")
    }


def to_string(root: etree._Element) -> str:
    return etree.tostring(root, encoding="unicode", pretty_print=True)

"""Libvirt network XML for a switch, built with lxml.

A switch becomes one libvirt network named ``PROJECT-SWITCH``:

* isolated (default): a bridge with no address and no forwarding, a plain L2 LAN;
* ``address A.B.C.D/P``: the bridge gets that address, and DHCP serves a range
  on it (below), plus a fixed lease for every interface with a static address
  on the switch (``StaticLease``);
* ``nat`` / ``route``: the same, forwarded through the host (an address is required);
* ``bridge NAME``: ``<forward mode='bridge'/>`` onto an existing host bridge;
  libvirt runs no DHCP there.

A switch whose hosts sit on several service hosts gets, on each of them, a
network with the same name in ``<forward mode='bridge'/>`` onto that service
host's *site bridge* (``site_bridge`` in the site config), a bridge joined at
layer 2 to the site bridges of the other service hosts: one LAN across hosts.
Such a switch has no ``address`` (the plan refuses it, see
``corral.plan.spans``), and its mark records the site bridge.

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
from corral.backends.libvirt.metadata import (
    NetworkMark,
    encode_network_mark,
    mark_portgroups,
    switch_model_json,
)
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
    project: str, switch: Switch, leases: Iterable[StaticLease] = (),
    site_bridge: str | None = None,
) -> etree._Element:
    """A new ``<network>`` document for ``switch`` of ``project`` (joined to
    ``site_bridge`` when the switch spans service hosts)."""
    return apply_switch(etree.Element("network"), project, switch, leases, site_bridge)


def apply_switch(
    root: etree._Element, project: str, switch: Switch, leases: Iterable[StaticLease] = (),
    site_bridge: str | None = None,
) -> etree._Element:
    """Make the parts of ``root`` Corral manages match ``switch``; return ``root``.

    ``root`` is a new document or libvirt's own XML of the network. Corral
    manages ``<name>``, ``<forward>`` (kept as libvirt wrote it while the mode
    stays, e.g. its ``<nat><port/></nat>``), ``<bridge>``, the IPv4 ``<ip>``
    with its DHCP range and static leases, and the mark portgroup. Anything
    else (``<dns>`` entries, ``<mtu>``, other portgroups, an IPv6 ``<ip>``,
    ``<uuid>``, ``<mac>``) stays, except what libvirt refuses on a network
    forwarding onto a host bridge: ``<mac>``, ``<dns>``, ``<domain>`` and
    every ``<ip>`` go when a switch becomes ``bridge NAME`` or joins
    ``site_bridge``.
    """
    iface = parse_address(switch)
    if site_bridge is not None:
        _check_spannable(switch)
    name = root.find("name")
    if name is None:
        name = etree.Element("name")
        root.insert(0, name)
    name.text = names.network_name(project, switch.name)
    host_bridge = site_bridge or (switch.bridge if switch.mode is SwitchMode.BRIDGE else None)
    if switch.mode is SwitchMode.BRIDGE and not switch.bridge:
        raise ConfigError(f"switch {switch.name}: bridge mode needs 'bridge NAME'")
    if host_bridge is not None:
        _set_forward(root, "bridge")
        _set_bridge(root, {"name": host_bridge})
        for tag in _REFUSED_ON_HOST_BRIDGE:
            for element in root.findall(tag):
                root.remove(element)
    else:
        if switch.mode in (SwitchMode.NAT, SwitchMode.ROUTE):
            if iface is None:
                raise ConfigError(
                    f"switch {switch.name}: {switch.mode.value} mode needs an address",
                    hint="for example: address 10.0.0.1/24",
                )
            _set_forward(root, switch.mode.value)
        else:
            _set_forward(root, None)
        bridge = names.bridge_name(project, switch.name)
        _set_bridge(root, {"name": bridge, "stp": "on", "delay": "0"})
    for group in mark_portgroups(root):
        root.remove(group)
    mark = mark_name(project, switch, site_bridge)
    _insert_after(root, etree.Element("portgroup", name=mark),
                  ("portgroup", "bridge", "forward", "uuid", "name"))
    for old in _ipv4_elements(root):
        root.remove(old)
    if iface is not None and host_bridge is None:
        _insert_after(root, _ip_element(iface, switch.dhcp, leases),
                      ("ip", "portgroup", "bridge", "forward", "uuid", "name"))
    return root


# Elements libvirt 9.0 refuses on a network with <forward mode='bridge'>
# (network_conf.c and the network driver's validation).
_REFUSED_ON_HOST_BRIDGE = ("mac", "dns", "domain", "mtu", "ip")


def mark_name(project: str, switch: Switch, site_bridge: str | None = None) -> str:
    """The name of the portgroup that marks ``switch``'s network as Corral's."""
    mark = NetworkMark(
        project, switch.name, switch.model_hash(), switch_model_json(switch), site_bridge
    )
    return encode_network_mark(mark)


def _check_spannable(switch: Switch) -> None:
    """A network on the site bridge is a plain L2 segment: libvirt can give it no
    address, DHCP or forwarding, and ``bridge NAME`` switches have their own bridge.
    The plan refuses such switches first (``corral.plan.spans``); this guards the
    backend against being asked anyway."""
    if switch.mode is SwitchMode.BRIDGE or switch.address:
        raise ConfigError(
            f"switch {switch.name}: only a switch without address, nat, route or bridge "
            "can join the site bridge"
        )


def _insert_after(root: etree._Element, element: etree._Element, tags: tuple[str, ...]) -> None:
    """Put ``element`` after the last child with the first of ``tags`` present."""
    for tag in tags:
        found = root.findall(tag)
        if found:
            found[-1].addnext(element)
            return
    root.append(element)


def _set_forward(root: etree._Element, mode: str | None) -> None:
    """One ``<forward mode=...>`` (None: none at all); an element whose mode
    already matches is left as libvirt or an administrator wrote it."""
    current = root.find("forward")
    if current is not None and mode is not None and current.get("mode", "nat") == mode:
        return
    for element in root.findall("forward"):
        root.remove(element)
    if mode is not None:
        _insert_after(root, etree.Element("forward", mode=mode), ("uuid", "name"))


def _set_bridge(root: etree._Element, attributes: dict[str, str]) -> None:
    """``<bridge>`` with exactly Corral's attributes plus any others already there
    (``macTableManager``, ``zone``), except ``stp``/``delay``/``zone`` in bridge mode."""
    bridge = root.find("bridge")
    if bridge is None:
        bridge = etree.Element("bridge")
        _insert_after(root, bridge, ("forward", "uuid", "name"))
    if "stp" not in attributes:  # onto a host bridge: libvirt refuses these
        for key in ("stp", "delay", "zone"):
            if key in bridge.attrib:
                del bridge.attrib[key]
    for key, value in attributes.items():
        bridge.set(key, value)


def _ipv4_elements(root: etree._Element) -> list[etree._Element]:
    return [ip for ip in root.findall("ip") if ip.get("family", "ipv4") == "ipv4"]


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
    found = _ipv4_elements(root)
    if not found:
        return set()
    ip = found[0]
    network = ipaddress.IPv4Interface(f"{ip.get('address')}/{ip.get('prefix', '24')}").network
    return {lease for lease in leases if _in_subnet(lease.ip, network)}


def static_leases_of(root: etree._Element) -> set[StaticLease]:
    """The static DHCP entries a network XML holds."""
    return {
        StaticLease(h.get("mac", "").lower(), h.get("ip", ""), h.get("name", ""))
        for ip in _ipv4_elements(root)
        for h in ip.iterfind("dhcp/host")
    }


def to_string(root: etree._Element) -> str:
    return etree.tostring(root, encoding="unicode", pretty_print=True)

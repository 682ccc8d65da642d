"""Switches as libvirt networks: ensure (idempotent), static leases, removal."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from copy import deepcopy
from dataclasses import dataclass
from urllib.parse import urlsplit

import libvirt
from lxml import etree

from corral.backends.base import StaticLease
from corral.backends.libvirt import names, network_xml
from corral.backends.libvirt.connection import error_code, libvirt_errors
from corral.backends.libvirt.metadata import mark_portgroups, network_mark_of
from corral.errors import BackendError, ConflictError, NotFoundError
from corral.model import Switch

_HOST_SECTION = libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST
_PORTGROUP_SECTION = libvirt.VIR_NETWORK_SECTION_PORTGROUP


def find(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork | None:
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_NETWORK:
            return None
        raise


def inactive_flags(conn: libvirt.virConnect) -> int:
    """The ``XMLDesc`` flags of a network's persistent definition on ``conn``:
    libvirt's test driver refuses the INACTIVE flag (its one definition is it),
    so asking it once saves a refused call per network."""
    return 0 if conn.getType() == "TEST" else libvirt.VIR_NETWORK_XML_INACTIVE


def inactive_root(
    network: libvirt.virNetwork, flags: int = libvirt.VIR_NETWORK_XML_INACTIVE
) -> etree._Element:
    """The network's persistent definition, parsed (``flags``: see :func:`inactive_flags`).

    Drivers that do not know the INACTIVE flag (libvirt's test driver) give
    their one definition instead.
    """
    try:
        xml = network.XMLDesc(flags)
    except libvirt.libvirtError as exc:
        if error_code(exc) != libvirt.VIR_ERR_INVALID_ARG:
            raise
        xml = network.XMLDesc(0)
    return etree.fromstring(xml.encode())


def ensure(
    conn: libvirt.virConnect, project: str, switch: Switch, leases: Iterable[StaticLease],
    site_bridge: str | None = None,
) -> str:
    """See :meth:`corral.backends.base.Backend.ensure_network`.

    A new network gets a new document; an existing one is edited in place
    (:func:`network_xml.apply_switch` on libvirt's own XML), so what an
    administrator added survives. A network whose switch became cross-host
    (or single-host again) is edited the same way: the recorded site bridge
    differs, so it is redefined onto the site bridge (or its own bridge).
    Raises BackendError, after the network is up again, when a running
    guest's NIC could not be plugged back into a restarted network.
    """
    name = names.network_name(project, switch.name)
    taps: list[Tap] = []
    with libvirt_errors(f"set up network {name}"):
        network = find(conn, name)
        if network is None:
            root = network_xml.build_network(project, switch, leases, site_bridge)
            network = conn.networkDefineXML(network_xml.to_string(root))
        else:
            current = inactive_root(network)
            mark = network_mark_of(current)
            if mark is None or mark.project != project:
                raise ConflictError(
                    f"network {name} exists but was not created by Corral for project {project}",
                    hint="rename the switch or remove that network",
                )
            if mark.model_hash != switch.model_hash() or mark.site_bridge != site_bridge:
                taps = attached_taps(conn, name) if network.isActive() else []
                edited = network_xml.apply_switch(
                    deepcopy(current), project, switch, leases, site_bridge
                )
                _redefine(conn, network, edited)
                network = conn.networkLookupByName(name)
            else:
                _refresh_mark(network, current, project, switch, site_bridge)
                wanted = network_xml.servable_leases(current, leases)
                if network_xml.static_leases_of(current) != wanted:
                    _sync_leases(network, current, wanted)
        if not network.isActive():
            network.create()
        if network.autostart():
            network.setAutostart(0)
        if taps:
            _rebridge(conn, name, network.bridgeName(), taps)
    return name


def _refresh_mark(
    network: libvirt.virNetwork, current: etree._Element, project: str, switch: Switch,
    site_bridge: str | None,
) -> None:
    """Rewrite the mark portgroup when it is not exactly what this version writes
    (a mark in the legacy format, or a model recorded differently), live and in
    the config, without restarting the network."""
    wanted = network_xml.mark_name(project, switch, site_bridge)
    groups = [g.get("name", "") for g in mark_portgroups(current)]
    if groups == [wanted]:
        return
    flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
    if network.isActive():
        flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
    for old in groups:
        network.update(
            libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, _PORTGROUP_SECTION, -1,
            _portgroup_xml(old), flags,
        )
    network.update(
        libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, _PORTGROUP_SECTION, -1,
        _portgroup_xml(wanted), flags,
    )


def _portgroup_xml(name: str) -> str:
    return etree.tostring(etree.Element("portgroup", name=name), encoding="unicode")


@dataclass(frozen=True, slots=True)
class Tap:
    """A running guest's NIC on a network: its domain, MAC and host-side tap,
    the bridge it was plugged into and its ``<interface>`` as a device update."""

    domain: str
    mac: str
    dev: str
    bridge: str = ""
    device_xml: str = ""


def attached_taps(conn: libvirt.virConnect, network: str) -> list[Tap]:
    """Host-side tap devices of running guests plugged into ``network``."""
    taps = []
    for domain in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        try:
            root = etree.fromstring(domain.XMLDesc(0).encode())
            domain_name = domain.name()
        except libvirt.libvirtError:
            continue
        # a NIC on a network that forwards onto a host bridge shows type='bridge'
        # in the live XML, its source still naming the network
        for iface in root.iterfind("devices/interface"):
            source = iface.find("source")
            target = iface.find("target")
            mac = iface.find("mac")
            if source is None or source.get("network") != network or target is None:
                continue
            if target.get("dev"):
                taps.append(Tap(
                    domain_name,
                    mac.get("address", "") if mac is not None else "",
                    target.get("dev", ""),
                    source.get("bridge", ""),
                    _device_update_xml(iface),
                ))
    return taps


def _device_update_xml(iface: etree._Element) -> str:
    """The live ``<interface>`` as ``virDomainUpdateDeviceFlags`` takes it: the
    network by name only (no port id or bridge of the old network), no alias."""
    element = deepcopy(iface)
    element.set("type", "network")
    source = element.find("source")
    if source is not None:
        for key in list(source.attrib):
            if key != "network":
                del source.attrib[key]
    for alias in element.findall("alias"):
        element.remove(alias)
    return etree.tostring(element, encoding="unicode")


def _rebridge(conn: libvirt.virConnect, network: str, bridge: str, taps: list[Tap]) -> None:
    """Plug guests' taps into the restarted network's new bridge.

    Restarting a network deletes its bridge (or leaves the host bridge it
    forwarded onto), and libvirt has no call that plugs running guests back
    into the same network. Unplugging and replugging the NIC would give the
    guest a new, unconfigured device; moving the tap keeps the guest's NIC
    and address as they were.

    When the network now has another bridge (a switch that became
    cross-host, or single-host again), updating the NIC with its own
    definition (``virDomainUpdateDeviceFlags``) makes libvirt move the tap to
    the new bridge: this works on any service host, local or remote. When
    the bridge kept its name, libvirt sees nothing to change, so the tap is
    moved with ``ip link set TAP master BRIDGE``, which needs the bridge to be
    on this machine: only for a local QEMU connection. Drivers other than
    QEMU have no real taps. A NIC left unplugged (a remote service host, or
    ``ip`` failing) is raised as BackendError naming each domain and NIC:
    those guests need a restart.
    """
    if conn.getType() != "QEMU":
        return
    local = urlsplit(conn.getURI()).hostname in (None, "", "localhost")
    failed = []
    for tap in taps:
        if tap.bridge != bridge and _replug(conn, tap, bridge):
            continue
        if not local:
            failed.append((tap, "the service host is remote"))
            continue
        done = subprocess.run(
            ["ip", "link", "set", "dev", tap.dev, "master", bridge, "up"],
            capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            failed.append((tap, done.stderr.strip() or f"ip exited with {done.returncode}"))
    if failed:
        listed = "; ".join(
            f"domain {tap.domain} NIC {tap.mac} (tap {tap.dev}): {why}" for tap, why in failed
        )
        raise BackendError(
            f"network {network} was restarted but running guests' NICs were not plugged "
            f"back into bridge {bridge}: {listed}",
            hint="restart those guests to reconnect them",
        )


def _replug(conn: libvirt.virConnect, tap: Tap, bridge: str) -> bool:
    """Let libvirt move the tap onto ``bridge`` by updating the NIC with its own
    definition; True when the live domain then shows it there."""
    try:
        domain = conn.lookupByName(tap.domain)
        domain.updateDeviceFlags(tap.device_xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        root = etree.fromstring(domain.XMLDesc(0).encode())
    except libvirt.libvirtError:
        return False
    for iface in root.iterfind("devices/interface"):
        mac, source = iface.find("mac"), iface.find("source")
        if mac is not None and source is not None and mac.get("address") == tap.mac:
            return source.get("bridge") == bridge
    return False


def _redefine(
    conn: libvirt.virConnect, network: libvirt.virNetwork, edited: etree._Element
) -> None:
    """Define the edited XML (it keeps the network's UUID), stopping the network
    first; ``ensure`` starts it again.

    Guests attached to it lose their link until their taps are moved to the
    new bridge (``_rebridge``); static lease changes alone never come here,
    they are applied live.
    """
    if network.isActive():
        network.destroy()
    conn.networkDefineXML(network_xml.to_string(edited))


def has_bridge(conn: libvirt.virConnect, name: str) -> bool | None:
    """See :meth:`corral.backends.base.Backend.has_bridge`.

    Asked of libvirt's interface driver, which lists the host's network
    devices (also on a remote service host) with their kind: a device of that
    name that is no bridge (``eth0``) is no bridge to attach to. A daemon
    without one (or one that fails) cannot tell: None, and the guest's start
    names a missing bridge instead.
    """
    try:
        found = conn.interfaceLookupByName(name)
        kind = etree.fromstring(found.XMLDesc(0).encode()).get("type")
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_INTERFACE:
            return False
        return None
    return kind == "bridge"


def set_static_leases(conn: libvirt.virConnect, name: str, leases: Iterable[StaticLease]) -> None:
    """See :meth:`corral.backends.base.Backend.set_static_leases`."""
    network = find(conn, name)
    if network is None:
        raise NotFoundError(f"no network '{name}' on this service host")
    with libvirt_errors(f"update static leases of network {name}"):
        current = inactive_root(network)
        _sync_leases(network, current, network_xml.servable_leases(current, leases))


def _sync_leases(
    network: libvirt.virNetwork, current: etree._Element, wanted: set[StaticLease]
) -> None:
    """Delete and add ``<host>`` entries with network.update, live and in the config."""
    have = network_xml.static_leases_of(current)
    flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
    if network.isActive():
        flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
    for lease in sorted(have - wanted, key=lambda item: item.mac):
        network.update(
            libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE,
            _HOST_SECTION,
            -1,
            network_xml.lease_xml(lease),
            flags,
        )
    for lease in sorted(wanted - have, key=lambda item: item.mac):
        network.update(
            libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
            _HOST_SECTION,
            -1,
            network_xml.lease_xml(lease),
            flags,
        )


def remove(conn: libvirt.virConnect, name: str) -> None:
    """See :meth:`corral.backends.base.Backend.remove_network`."""
    network = find(conn, name)
    if network is None:
        return
    with libvirt_errors(f"remove network {name}"):
        if network_mark_of(inactive_root(network)) is None:
            raise ConflictError(f"network {name} was not created by Corral; not removing it")
        if network.isActive():
            network.destroy()
        network.undefine()

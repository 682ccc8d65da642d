"""Switches as libvirt networks: ensure (idempotent), static leases, removal."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from urllib.parse import urlsplit

import libvirt
from lxml import etree

from corral.backends.base import StaticLease
from corral.backends.libvirt import names, network_xml
from corral.backends.libvirt.connection import error_code, libvirt_errors
from corral.backends.libvirt.metadata import network_mark_of
from corral.errors import ConflictError, NotFoundError
from corral.model import Switch

_HOST_SECTION = libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST


def find(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork | None:
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_NETWORK:
            return None
        raise


def inactive_root(network: libvirt.virNetwork) -> etree._Element:
    """The network's persistent definition, parsed.

    Drivers that do not know the INACTIVE flag (libvirt's test driver) give
    their one definition instead.
    """
    try:
        xml = network.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)
    except libvirt.libvirtError as exc:
        if error_code(exc) != libvirt.VIR_ERR_INVALID_ARG:
            raise
        xml = network.XMLDesc(0)
    return etree.fromstring(xml.encode())


def ensure(
    conn: libvirt.virConnect, project: str, switch: Switch, leases: Iterable[StaticLease]
) -> str:
    """See :meth:`corral.backends.base.Backend.ensure_network`."""
    root = network_xml.build_network(project, switch, leases)
    wanted_leases = network_xml.static_leases_of(root)  # those this switch can serve
    name = names.network_name(project, switch.name)
    taps: list[str] = []
    with libvirt_errors(f"set up network {name}"):
        network = find(conn, name)
        if network is None:
            network = conn.networkDefineXML(network_xml.to_string(root))
        else:
            current = inactive_root(network)
            mark = network_mark_of(current)
            if mark is None or mark.project != project:
                raise ConflictError(
                    f"network {name} exists but was not created by Corral for project {project}",
                    hint="rename the switch or remove that network",
                )
            if mark.model_hash != switch.model_hash():
                taps = attached_taps(conn, name) if network.isActive() else []
                _redefine(conn, network, current, root)
                network = conn.networkLookupByName(name)
            elif network_xml.static_leases_of(current) != wanted_leases:
                _sync_leases(network, current, wanted_leases)
        if not network.isActive():
            network.create()
            if taps:
                _rebridge(conn, network.bridgeName(), taps)
        if network.autostart():
            network.setAutostart(0)
    return name


def attached_taps(conn: libvirt.virConnect, network: str) -> list[str]:
    """Host-side tap devices of running guests plugged into ``network``."""
    taps = []
    for domain in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        try:
            root = etree.fromstring(domain.XMLDesc(0).encode())
        except libvirt.libvirtError:
            continue
        for iface in root.iterfind("devices/interface[@type='network']"):
            source = iface.find("source")
            target = iface.find("target")
            if source is not None and source.get("network") == network and target is not None:
                taps.append(target.get("dev", ""))
    return [t for t in taps if t]


def _rebridge(conn: libvirt.virConnect, bridge: str, taps: list[str]) -> None:
    """Plug guests' taps into the restarted network's new bridge.

    Restarting a network deletes its bridge, and libvirt has no call to plug
    running guests back (it does so itself only when the daemon restarts).
    Unplugging and replugging the NIC would give the guest a new, unconfigured
    device; moving the tap keeps the guest's NIC and address as they were.
    This needs the bridge to be on this machine, so it is done only for a
    local QEMU connection; on a remote service host the guests stay unplugged
    until they restart (a known limit), and other drivers have no real taps.
    """
    local = urlsplit(conn.getURI()).hostname in (None, "", "localhost")
    if not local or conn.getType() != "QEMU":
        return
    for tap in taps:
        subprocess.run(
            ["ip", "link", "set", "dev", tap, "master", bridge, "up"],
            capture_output=True, check=False,
        )


def _redefine(
    conn: libvirt.virConnect,
    network: libvirt.virNetwork,
    current: etree._Element,
    root: etree._Element,
) -> None:
    """Replace the definition (same UUID), stopping it first; ``ensure`` starts it again.

    Guests attached to it lose their link until their taps are moved to the
    new bridge (``_rebridge``); static lease changes alone never come here,
    they are applied live.
    """
    uuid = current.findtext("uuid")
    if uuid:
        element = etree.Element("uuid")
        element.text = uuid
        root.find("name").addnext(element)
    if network.isActive():
        network.destroy()
    conn.networkDefineXML(network_xml.to_string(root))


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

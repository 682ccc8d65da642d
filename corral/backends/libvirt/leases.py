"""DHCP leases of Corral's networks, read from libvirt's dnsmasq bookkeeping."""

from __future__ import annotations

from collections.abc import Iterable

import libvirt

from corral.backends.base import leases_by_mac
from corral.backends.libvirt.connection import error_code


def leases(conn: libvirt.virConnect, network_names: Iterable[str]) -> dict[str, list[str]]:
    """MAC -> IP addresses over the given networks.

    A network that is missing, inactive or without DHCP (isolated without an
    address, bridge mode) simply has no leases: status shows no address
    rather than failing.
    """
    wanted = set(network_names)
    entries: list[dict[str, object]] = []
    if not wanted:
        return {}
    # One listing of the active networks instead of a look-up and a state call each.
    for network in conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE):
        try:
            if network.name() in wanted:
                entries.extend(network.DHCPLeases(None, 0))
        except libvirt.libvirtError as exc:
            if error_code(exc) in (libvirt.VIR_ERR_NO_NETWORK, libvirt.VIR_ERR_NO_SUPPORT):
                continue
            raise
    return leases_by_mac(entries)

"""A switch that spans service hosts: its network forwards onto the site bridge.

On the test driver: the XML shape, its validity (libvirt's own schema), the
mark that records the site bridge, and converting a network between its own
bridge and the site bridge in both directions, in place (same UUID).
"""

from __future__ import annotations

import pytest
from lxml import etree
from scenarios import PROJECT
from xmlvalid import validate

from corral.backends.libvirt import metadata, network_xml
from corral.backends.libvirt.networks import inactive_root
from corral.errors import ConfigError
from corral.model import Switch, SwitchMode

SITE_BRIDGE = "br-site"


def test_a_cross_host_network_forwards_onto_the_site_bridge() -> None:
    root = network_xml.build_network(PROJECT, Switch(name="lan"), site_bridge=SITE_BRIDGE)
    assert root.find("name").text == "lab-lan"
    assert root.find("forward").attrib == {"mode": "bridge"}
    assert root.find("bridge").attrib == {"name": SITE_BRIDGE}
    assert root.find("ip") is None and root.find("mac") is None
    mark = metadata.network_mark_of(root)
    assert mark is not None and (mark.project, mark.switch) == (PROJECT, "lan")
    assert mark.site_bridge == SITE_BRIDGE
    assert mark.model_hash == Switch(name="lan").model_hash()
    validate(network_xml.to_string(root), "network", "cross-host network")


def test_a_single_host_network_records_no_site_bridge() -> None:
    root = network_xml.build_network(PROJECT, Switch(name="lan"))
    mark = metadata.network_mark_of(root)
    assert mark is not None and mark.site_bridge is None
    assert root.find("bridge").get("name").startswith("crl-")


@pytest.mark.parametrize("switch", [
    Switch(name="srv", address="10.10.0.1/24"),
    Switch(name="out", mode=SwitchMode.NAT, address="192.168.77.1/24"),
    Switch(name="phys", mode=SwitchMode.BRIDGE, bridge="br0"),
], ids=["address", "nat", "bridge"])
def test_what_cannot_span_hosts_is_not_built(switch: Switch) -> None:
    with pytest.raises(ConfigError, match="can join the site bridge"):
        network_xml.build_network(PROJECT, switch, site_bridge=SITE_BRIDGE)


def test_a_network_converts_to_cross_host_and_back_in_place(backend) -> None:
    switch = Switch(name="lan")
    name = backend.ensure_network(PROJECT, switch)
    network = backend.conn.networkLookupByName(name)
    uuid = network.UUIDString()
    own_bridge = network.bridgeName()
    (seen,) = backend.observe(PROJECT).networks
    assert seen.site_bridge is None

    backend.ensure_network(PROJECT, switch, site_bridge=SITE_BRIDGE)
    network = backend.conn.networkLookupByName(name)
    assert network.UUIDString() == uuid and network.isActive()
    root = inactive_root(network)
    assert root.find("forward").get("mode") == "bridge"
    assert root.find("bridge").get("name") == SITE_BRIDGE
    validate(network.XMLDesc(0), "network", "converted to cross-host")
    (seen,) = backend.observe(PROJECT).networks
    assert (seen.site_bridge, seen.bridge, seen.model_hash) == (
        SITE_BRIDGE, SITE_BRIDGE, switch.model_hash())
    # Ensuring again changes nothing.
    before = network.XMLDesc(0)
    backend.ensure_network(PROJECT, switch, site_bridge=SITE_BRIDGE)
    assert backend.conn.networkLookupByName(name).XMLDesc(0) == before

    backend.ensure_network(PROJECT, switch)
    network = backend.conn.networkLookupByName(name)
    root = etree.fromstring(network.XMLDesc(0).encode())
    assert network.UUIDString() == uuid
    assert root.find("forward") is None
    assert root.find("bridge").attrib == {"name": own_bridge, "stp": "on", "delay": "0"}
    validate(network.XMLDesc(0), "network", "converted back to single-host")
    (seen,) = backend.observe(PROJECT).networks
    assert seen.site_bridge is None


def test_a_renamed_site_bridge_moves_the_network(backend) -> None:
    switch = Switch(name="lan")
    name = backend.ensure_network(PROJECT, switch, site_bridge=SITE_BRIDGE)
    backend.ensure_network(PROJECT, switch, site_bridge="br-other")
    root = inactive_root(backend.conn.networkLookupByName(name))
    assert root.find("bridge").get("name") == "br-other"
    assert metadata.network_mark_of(root).site_bridge == "br-other"

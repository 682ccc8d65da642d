"""ensure_network is idempotent, updates static leases live, and redefines on change."""

from __future__ import annotations

import pytest
from lxml import etree
from scenarios import LEASES, NETWORKS, PROJECT, legacy_network_mark

from corral.backends import StaticLease
from corral.backends.libvirt import metadata, network_xml
from corral.backends.libvirt.networks import inactive_root
from corral.errors import ConfigError, ConflictError
from corral.model import Switch, SwitchMode


def _leases(backend, name: str) -> set[StaticLease]:
    return network_xml.static_leases_of(inactive_root(backend.conn.networkLookupByName(name)))


def test_ensure_is_idempotent(backend) -> None:
    switch, leases = NETWORKS["address-dhcp-leases"]
    first = backend.ensure_network(PROJECT, switch, leases)
    uuid = backend.conn.networkLookupByName(first).UUIDString()
    assert backend.ensure_network(PROJECT, switch, leases) == first
    assert backend.conn.networkLookupByName(first).UUIDString() == uuid
    assert len(backend.observe(PROJECT).networks) == 1
    assert not backend.conn.networkLookupByName(first).autostart()


def test_static_leases_follow_the_hosts(backend) -> None:
    switch, _ = NETWORKS["address-dhcp-leases"]
    name = backend.ensure_network(PROJECT, switch, LEASES[:1])
    assert _leases(backend, name) == {LEASES[0]}
    added = StaticLease("52:54:00:aa:00:03", "10.10.0.30", "cache")
    backend.ensure_network(PROJECT, switch, [LEASES[1], added])
    assert _leases(backend, name) == {LEASES[1], added}
    backend.set_static_leases(name, [])
    assert _leases(backend, name) == set()


def test_changed_switch_is_redefined(backend) -> None:
    name = backend.ensure_network(PROJECT, Switch(name="lan"))
    uuid = backend.conn.networkLookupByName(name).UUIDString()
    wider = Switch(name="lan", address="10.30.0.1/24")
    backend.ensure_network(PROJECT, wider)
    network = backend.conn.networkLookupByName(name)
    assert network.UUIDString() == uuid and network.isActive()
    (seen,) = backend.observe(PROJECT).networks
    assert seen.model_hash == wider.model_hash()


def test_network_of_someone_else_is_left_alone(backend) -> None:
    backend.conn.networkDefineXML(
        "<network><name>lab-taken</name><bridge name='virbr9'/></network>"
    )
    with pytest.raises(ConflictError, match="network lab-taken exists but was not created"):
        backend.ensure_network(PROJECT, Switch(name="taken"))
    with pytest.raises(ConflictError, match="not removing it"):
        backend.remove_network("lab-taken")


def test_remove_network(backend) -> None:
    name = backend.ensure_network(PROJECT, Switch(name="lan"))
    backend.remove_network(name)
    backend.remove_network(name)  # already gone
    assert backend.observe(PROJECT).networks == ()


@pytest.mark.parametrize(
    ("switch", "message"),
    [
        (Switch(name="out", mode=SwitchMode.NAT), "switch out: nat mode needs an address"),
        (Switch(name="b", mode=SwitchMode.BRIDGE), "switch b: bridge mode needs 'bridge NAME'"),
        (Switch(name="x", address="10.0.0.300/24"), "address '10.0.0.300/24' is not A.B.C.D/P"),
        (Switch(name="y", address="10.0.0.1"), "needs a prefix length"),
    ],
)
def test_bad_switches_are_config_errors(switch: Switch, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        network_xml.build_network(PROJECT, switch)


def _define_by_hand(backend, root: etree._Element) -> None:
    """``virsh net-edit`` and a restart (the test driver shows no inactive XML)."""
    name = root.findtext("name")
    running = name in backend.conn.listNetworks()
    if running:
        backend.conn.networkLookupByName(name).destroy()
    backend.conn.networkDefineXML(etree.tostring(root, encoding="unicode"))
    if running:
        backend.conn.networkLookupByName(name).create()


def test_a_legacy_mark_is_recognised_and_upgraded_in_place(backend) -> None:
    switch = Switch(name="lan", address="10.40.0.1/24")
    root = network_xml.build_network(PROJECT, switch)
    root.find("portgroup").set("name", legacy_network_mark(PROJECT, switch))
    _define_by_hand(backend, root)
    network = backend.conn.networkLookupByName("lab-lan")
    network.create()
    (seen,) = backend.observe(PROJECT).networks
    assert (seen.switch, seen.model_hash, seen.model) == ("lan", switch.model_hash(), switch)

    backend.ensure_network(PROJECT, switch)
    assert network.isActive()  # the mark is rewritten live, no restart
    (group,) = inactive_root(network).findall("portgroup")
    assert group.get("name") == network_xml.mark_name(PROJECT, switch)
    assert metadata.is_current_network_mark(group.get("name"))
    assert [g.get("name") for g in etree.fromstring(network.XMLDesc(0).encode())
            .findall("portgroup")] == [group.get("name")]
    assert backend.observe(PROJECT).networks[0].model == switch


def test_mark_decoding_rejects_what_is_not_a_mark() -> None:
    for name in ("web-ports", "corral-mark.v2.", "corral-mark.v2.bm90LWpzb24",
                 "corral-mark.v2.WzFd", "corral-meta;switch=x"):
        assert metadata.decode_network_mark(name) is None, name


def test_redefinition_keeps_what_an_administrator_added(backend) -> None:
    name = backend.ensure_network(PROJECT, Switch(name="lan", address="10.30.0.1/24"))
    network = backend.conn.networkLookupByName(name)
    uuid = network.UUIDString()
    root = inactive_root(network)
    etree.SubElement(root, "mtu", size="9000")
    etree.SubElement(root, "portgroup", name="web-ports")
    dns = etree.SubElement(root, "dns")
    dns_host = etree.SubElement(dns, "host", ip="10.30.0.5")
    etree.SubElement(dns_host, "hostname").text = "files"
    etree.SubElement(root, "ip", family="ipv6", address="fd00:30::1", prefix="64")
    _define_by_hand(backend, root)

    def kept(root: etree._Element) -> None:
        assert root.find("mtu").get("size") == "9000"
        assert root.find("portgroup[@name='web-ports']") is not None
        assert root.findtext("dns/host/hostname") == "files"
        assert root.find("ip[@family='ipv6']").get("address") == "fd00:30::1"

    for switch in (
        Switch(name="lan", address="10.31.0.1/24"),
        Switch(name="lan", mode=SwitchMode.NAT, address="10.31.0.1/24"),
        Switch(name="lan", mode=SwitchMode.ROUTE, address="10.32.0.1/24", dhcp=False),
        Switch(name="lan", address="10.33.0.1/24"),
    ):
        backend.ensure_network(PROJECT, switch)
        now = inactive_root(network)
        kept(now)
        assert network.UUIDString() == uuid and network.isActive()
        forward = now.find("forward")
        wanted_mode = None if switch.mode is SwitchMode.ISOLATED else switch.mode.value
        assert (forward.get("mode") if forward is not None else None) == wanted_mode
        (ipv4,) = [ip for ip in now.findall("ip") if ip.get("family") != "ipv6"]
        assert f"{ipv4.get('address')}/{ipv4.get('prefix')}" == switch.address
        assert (ipv4.find("dhcp") is not None) == switch.dhcp
        assert len(metadata.mark_portgroups(now)) == 1
        assert backend.observe(PROJECT).networks[0].model == switch

    # Onto a host bridge: libvirt refuses <dns>, <mac> and <ip> there; the rest stays.
    bridged = Switch(name="lan", mode=SwitchMode.BRIDGE, bridge="br7")
    backend.ensure_network(PROJECT, bridged)
    now = inactive_root(network)
    assert now.find("portgroup[@name='web-ports']") is not None
    assert now.find("dns") is None and now.find("ip") is None
    assert now.find("bridge").attrib == {"name": "br7"}
    assert backend.observe(PROJECT).networks[0].model == bridged

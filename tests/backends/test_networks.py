"""ensure_network is idempotent, updates static leases live, and redefines on change."""

from __future__ import annotations

import pytest
from scenarios import LEASES, NETWORKS, PROJECT

from corral.backends import StaticLease
from corral.backends.libvirt import network_xml
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

"""Naming rules, the DHCP range rule and the metadata round trips."""

from __future__ import annotations

import ipaddress

import pytest
from scenarios import host

from corral.backends.libvirt import metadata, names, network_xml
from corral.model import Switch, SwitchMode


def test_bridge_names_fit_linux_and_differ_per_switch() -> None:
    a = names.bridge_name("a-very-long-project-name", "a-very-long-switch-name")
    b = names.bridge_name("a-very-long-project-name", "another-switch")
    assert a.startswith("crl-") and len(a) == 12 and a != b
    assert a == names.bridge_name("a-very-long-project-name", "a-very-long-switch-name")


def test_names_begin_with_the_project() -> None:
    assert names.domain_name("ldaptest", "ldapserver") == "ldaptest-ldapserver"
    assert names.network_name("ldaptest", "LDAPlan") == "ldaptest-LDAPlan"
    assert names.pool_name("ldaptest") == "corral-ldaptest"
    assert names.project_of_pool("corral-ldaptest") == "ldaptest"
    assert names.project_of_pool("default") is None


@pytest.mark.parametrize(
    ("volume", "parsed"),
    [("web.qcow2", ("web", "disk", None)), ("web-seed.iso", ("web", "seed", None)),
     ("x-seed.qcow2", ("x-seed", "disk", None)), ("web.data.qcow2", ("web", "data", "data")),
     ("notes.txt", None)],
)
def test_volume_names(volume: str, parsed: tuple[str, str, str | None] | None) -> None:
    assert names.parse_volume(volume) == parsed
    if parsed is not None and parsed[1] == "data":
        assert names.data_volume(parsed[0], parsed[2] or "") == volume


def test_pools_of_filepath_hosts_and_volume_groups() -> None:
    pool = names.directory_pool_name("lab", "/srv/vms")
    assert pool.startswith("corral-lab.dir-") and names.project_of_pool(pool) == "lab"
    assert names.project_of_pool("corral-my-lab.dir-0123abcd") == "my-lab"
    assert names.lvm_pool_name("vg0") == "corral.lvm.vg0"
    assert names.project_of_pool("corral.lvm.vg0") is None
    assert names.volume_group_of_pool("corral.lvm.vg0") == "vg0"
    assert names.parse_logical_volume(names.logical_volume("lab", "web")) == (
        "lab", "web", "disk", None
    )
    assert names.parse_logical_volume(names.logical_volume("lab", "web", "data")) == (
        "lab", "web", "data", "data"
    )


@pytest.mark.parametrize(
    ("address", "span"),
    [
        ("10.0.0.1/24", ("10.0.0.128", "10.0.0.254")),
        ("192.168.5.100/24", ("192.168.5.178", "192.168.5.254")),
        ("10.20.0.1/16", ("10.20.128.0", "10.20.255.254")),
        ("10.0.0.1/30", ("10.0.0.2", "10.0.0.2")),
        ("10.0.0.254/24", None),
        ("10.0.0.1/31", None),
    ],
)
def test_dhcp_range_is_the_upper_half_above_the_host(address: str, span) -> None:
    assert network_xml.dhcp_range(ipaddress.IPv4Interface(address)) == span


def test_network_mark_round_trip_survives_awkward_values() -> None:
    switch = Switch(name="lan&<'\">", mode=SwitchMode.NAT, address="10.0.0.1/24")
    mark = metadata.NetworkMark("p;q=r", switch.name, "abc", metadata.switch_model_json(switch))
    encoded = metadata.encode_network_mark(mark)
    assert not set("&<>'\"") & set(encoded)
    back = metadata.decode_network_mark(encoded)
    assert back == mark and back.model() == switch
    assert metadata.decode_network_mark("web-ports") is None


def test_domain_mark_round_trip() -> None:
    h = host("web", vncdisplay=1)
    mark = metadata.DomainMark(
        "lab", "web", h.model_hash(), "tiny", "local", ("52:54:00:aa:00:01",), True,
        metadata.host_model_json(h),
    )
    element = metadata.domain_mark_element(mark)
    assert metadata.parse_domain_mark(element) == mark
    plain = metadata.without_namespaces(element)
    assert "xmlns" not in plain and metadata.parse_domain_mark_xml(plain) == mark
    assert mark.model() == h


def test_unreadable_model_is_none_not_an_error() -> None:
    mark = metadata.DomainMark("lab", "web", "h", None, "local", model_json='{"bogus": 1}')
    assert mark.model() is None


def test_runtime_start_round_trip() -> None:
    assert metadata.parse_started(metadata.runtime_xml(1700000000.25)) == 1700000000.25
    assert metadata.parse_started("<runtime/>") is None


def test_start_time_added_to_a_mark_keeps_the_rest() -> None:
    mark = metadata.DomainMark("lab", "web", "h", "tiny", "local", nic_macs=("52:54:00:00:00:01",))
    plain = metadata.without_namespaces(metadata.domain_mark_element(mark))
    marked = metadata.with_started(plain, 1700000000.25)
    assert marked is not None
    again = metadata.with_started(marked, 1700000001.5)
    assert again is not None and again.count("started") == 2  # one element, replaced
    assert metadata.parse_domain_mark_xml(again) == metadata.DomainMark(
        "lab", "web", "h", "tiny", "local", nic_macs=("52:54:00:00:00:01",), started=1700000001.5)
    assert metadata.with_started("<runtime/>", 1.0) is None
    assert metadata.with_started("not xml", 1.0) is None

"""Redefining a domain (upgrade) edits only what Corral manages."""

from __future__ import annotations

from dataclasses import replace

import libvirt
import pytest
from lxml import etree
from scenarios import DOMAINS, direct_template, host, spec

from corral.backends import NicSpec
from corral.errors import ConflictError
from corral.model import Interface


def _add_by_hand(backend, name: str) -> None:
    """What an administrator might do with ``virsh edit``: add a device and a description."""
    domain = backend.conn.lookupByName(name)
    root = etree.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).encode())
    etree.SubElement(root, "description").text = "hand-made note"
    devices = root.find("devices")
    rng = etree.SubElement(devices, "rng", model="virtio")
    etree.SubElement(rng, "backend", model="random").text = "/dev/urandom"
    nic = etree.SubElement(devices, "interface", type="network")
    etree.SubElement(nic, "mac", address="52:54:00:ff:ff:ff")
    etree.SubElement(nic, "source", network="default")
    backend.conn.defineXML(etree.tostring(root, encoding="unicode"))


def _root(backend, name: str) -> etree._Element:
    return etree.fromstring(backend.describe(name).encode())


def _macs(root: etree._Element) -> list[str]:
    return [m.get("address") for m in root.iterfind("devices/interface/mac")]


def test_redefine_keeps_hand_added_elements_and_applies_changes(backend) -> None:
    name = backend.define_domain(DOMAINS["direct-boot"])
    _add_by_hand(backend, name)
    uuid = _root(backend, name).findtext("uuid")

    bigger = host("tiny1", memory_mib=512, vcpus=2, maxvcpus=2)
    backend.define_domain(spec(bigger, direct_template()))

    root = _root(backend, name)
    assert root.findtext("uuid") == uuid
    assert root.findtext("description") == "hand-made note"
    assert root.find("devices/rng/backend").text == "/dev/urandom"
    assert "52:54:00:ff:ff:ff" in _macs(root)
    assert root.findtext("currentMemory") == str(512 * 1024)
    assert root.findtext("vcpu") == "2"
    (seen,) = backend.observe("lab").domains
    assert seen.model_hash == bigger.model_hash()


def test_redefine_removes_only_nics_corral_managed(backend) -> None:
    name = backend.define_domain(DOMAINS["direct-boot"])
    _add_by_hand(backend, name)
    one_nic = host(
        "tiny1",
        interfaces=(Interface(name="eth0", switch="lan", mac="52:54:00:aa:00:01"),),
    )
    backend.define_domain(spec(one_nic, direct_template()))
    assert sorted(_macs(_root(backend, name))) == ["52:54:00:aa:00:01", "52:54:00:ff:ff:ff"]


def test_direct_to_disk_template_drops_kernel_boot(backend) -> None:
    from scenarios import disk_template

    name = backend.define_domain(DOMAINS["direct-boot"])
    backend.define_domain(spec(host("tiny1"), disk_template()))
    os_el = _root(backend, name).find("os")
    assert os_el.find("kernel") is None and os_el.find("cmdline") is None


def test_vnc_added_by_hand_survives_but_corral_vnc_is_removed(backend) -> None:
    vnc_spec = DOMAINS["vnc"]
    name = backend.define_domain(vnc_spec)
    assert _root(backend, name).find("devices/graphics[@type='vnc']") is not None
    plain = host("desk")
    backend.define_domain(spec(plain, direct_template()))
    assert _root(backend, name).find("devices/graphics[@type='vnc']") is None


def test_nic_spec_takes_one_target_or_none() -> None:
    with pytest.raises(ValueError, match="network or bridge, not both"):
        NicSpec("52:54:00:00:00:01", network="n", bridge="b")
    assert NicSpec("52:54:00:00:00:01").kind == "user"
    assert NicSpec("52:54:00:00:00:01", bridge="br0").kind == "bridge"



def test_a_name_taken_by_another_project_or_by_hand_is_refused(backend) -> None:
    backend.define_domain(spec(host("x-y"), direct_template()))  # lab-x-y
    clash = replace(spec(host("y"), direct_template()), project="lab-x")  # also lab-x-y
    with pytest.raises(ConflictError, match="lab-x-y already exists and is host x-y of project"):
        backend.define_domain(clash)
    backend.conn.defineXML(
        "<domain type='test'><name>lab-hand</name><memory>1024</memory>"
        "<os><type>hvm</type></os></domain>"
    )
    with pytest.raises(ConflictError, match="domain lab-hand already exists and is not Corral's"):
        backend.define_domain(spec(host("hand"), direct_template()))


def test_a_host_uuid_defines_the_domain_with_it_and_redefinition_keeps_it(backend) -> None:
    fixed = "bbdda922-8ee3-4ff8-874e-7c4e712dc4c7"
    name = backend.define_domain(spec(host("ident", uuid=fixed), direct_template()))
    assert backend.conn.lookupByName(name).UUIDString() == fixed
    backend.define_domain(spec(host("ident", uuid=fixed, memory_mib=256), direct_template()))
    domain = backend.conn.lookupByName(name)
    assert domain.UUIDString() == fixed
    assert _root(backend, name).findtext("currentMemory") == str(256 * 1024)

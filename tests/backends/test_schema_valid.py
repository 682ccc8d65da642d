"""Every XML Corral writes, and libvirt's XML of what Corral defined, is valid
against libvirt's own RNG schemas (``virt-xml-validate``), on the test driver.

The same checks run on the real libvirtd with QEMU in ``test_real_schema.py``.
"""

from __future__ import annotations

import libvirt
import pytest
from lxml import etree
from scenarios import (
    DOMAINS,
    NETWORKS,
    PROJECT,
    backing_of,
    console_log_of,
    direct_template,
    disk_template,
    spec,
)
from scenarios import host as scenario_host
from xmlvalid import validate

from corral.backends.base import StoragePlace
from corral.backends.libvirt import domain_xml, network_xml, pools, storage, templatestore
from corral.model import Switch, SwitchMode


@pytest.mark.parametrize("scenario", sorted(DOMAINS))
@pytest.mark.parametrize("chain", ["explicit", "unknown"])
def test_built_domain_xml_is_valid(scenario: str, chain: str) -> None:
    backing = backing_of(scenario) if chain == "explicit" else None
    built = domain_xml.build_domain(
        DOMAINS[scenario], console_log=console_log_of(scenario), backing=backing
    )
    validate(domain_xml.to_string(built), "domain", f"domain {scenario}")


@pytest.mark.parametrize("scenario", sorted(NETWORKS))
def test_built_network_xml_is_valid(scenario: str) -> None:
    switch, leases = NETWORKS[scenario]
    built = network_xml.build_network(PROJECT, switch, leases)
    validate(network_xml.to_string(built), "network", f"network {scenario}")


def test_built_pool_and_volume_xml_is_valid() -> None:
    validate(storage.pool_xml(PROJECT, "/var/lib/corral/runs"), "storagepool", "pool")
    overlay = storage.overlay_xml("web.qcow2", 2 * 1024**3, "/t/deb/disk.qcow2", "qcow2")
    validate(overlay, "storagevol", "run copy")
    validate(storage.raw_volume_xml("web-seed.iso", 4096), "storagevol", "seed")
    validate(storage.qcow2_volume_xml("web.data.qcow2", 1024**3), "storagevol", "extra disk")
    place = StoragePlace(directory="/srv/vms")
    validate(pools.pool_for(PROJECT, "/r", place).xml, "storagepool", "filepath pool")
    validate(pools.logical_pool("vg0").xml, "storagepool", "logical pool")
    store = templatestore.TemplateStore("milano", "/srv/corral/templates")
    validate(store.spec.xml, "storagepool", "template store")
    copy = templatestore.empty_volume_xml("tiny.a771e5f91e240277.disk.qcow2")
    validate(copy, "storagevol", "template copy")


# The test driver cannot upload a template into a logical volume, so the LVM
# scenario is validated as built (above) and refused here by design.
@pytest.mark.parametrize("scenario", sorted(set(DOMAINS) - {"lvm"}))
def test_domain_as_libvirt_holds_it_is_valid(backend, scenario: str) -> None:
    wanted = DOMAINS[scenario]
    template = direct_template() if wanted.boot.kind == "direct" else disk_template()
    assert backend.create_run_copy(PROJECT, wanted.host.name, template, None) == wanted.disk_path
    name = backend.define_domain(wanted)
    domain = backend.conn.lookupByName(name)
    held = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    validate(held, "domain", f"defined {scenario}")
    # The backing chain was read from the run copy's volume and written out.
    source = etree.fromstring(held.encode()).find(
        f"devices/disk/backingStore/source[@file='{template.disk}']"
    )
    assert source is not None and source.find("seclabel").get("relabel") == "no"
    # Redefinition edits libvirt's own XML; the edited document is valid too.
    changed = spec(scenario_host(DOMAINS[scenario].host.name, memory_mib=256), disk_template())
    backend.define_domain(changed)
    validate(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), "domain", f"redefined {scenario}")


@pytest.mark.parametrize("scenario", sorted(NETWORKS))
def test_network_as_libvirt_holds_it_is_valid(backend, scenario: str) -> None:
    switch, leases = NETWORKS[scenario]
    name = backend.ensure_network(PROJECT, switch, leases)
    network = backend.conn.networkLookupByName(name)
    validate(network.XMLDesc(0), "network", f"defined {scenario}")
    other = (
        Switch(name=switch.name, mode=SwitchMode.NAT, address="10.99.0.1/24")
        if switch.mode is SwitchMode.BRIDGE
        else Switch(name=switch.name, mode=SwitchMode.BRIDGE, bridge="br9")
    )
    backend.ensure_network(PROJECT, other)
    validate(network.XMLDesc(0), "network", f"{scenario} changed to {other.mode.value}")


def test_pool_and_volumes_as_libvirt_holds_them_are_valid(backend) -> None:
    backend.create_run_copy(PROJECT, "web", disk_template(), 4096)
    pool = backend.conn.storagePoolLookupByName(f"corral-{PROJECT}")
    validate(pool.XMLDesc(0), "storagepool", "pool")
    volume = pool.storageVolLookupByName("web.qcow2")
    validate(volume.XMLDesc(0), "storagevol", "run copy")


def test_a_mark_in_the_old_format_fails_the_schema_and_the_new_one_passes() -> None:
    """The reason for the mark's encoding: the old one cannot validate, so the
    validator really looks at portgroup names."""
    root = network_xml.build_network(PROJECT, Switch(name="lan"))
    validate(network_xml.to_string(root), "network", "new mark")
    root.find("portgroup").set("name", "corral-meta;project=lab;switch=lan;hash=x")
    with pytest.raises(AssertionError, match="not a valid libvirt network XML"):
        validate(network_xml.to_string(root), "network", "old mark")

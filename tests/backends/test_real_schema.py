"""On the real libvirtd with QEMU: what Corral defines is schema-valid as libvirt
holds it, networks are edited in place, observing starts nothing, and a guest
NIC that cannot be plugged back is reported.

Each test uses a unique project (``xv`` + hex) and removes what it made. No
guest boots here.
"""

from __future__ import annotations

import random
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import libvirt
import pytest
from lxml import etree
from scenarios import DOMAINS, NETWORKS, legacy_network_mark
from xmlvalid import validate

from corral.backends.libvirt import network_xml, networks
from corral.backends.libvirt.networks import Tap, inactive_root
from corral.errors import BackendError
from corral.images.registry import Template
from corral.model import Switch

pytestmark = pytest.mark.libvirt

URI = "qemu:///system"


def _templates(scratch: Path) -> dict[str, Template]:
    """A disk template and a direct-boot one, small files made here (nothing boots)."""
    root = scratch / "templates"
    root.mkdir(mode=0o755)
    disk = root / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "32M"], check=True)
    kernel, initrd = root / "vmlinuz", root / "initrd.img"
    kernel.write_bytes(b"kernel" * 1000)
    initrd.write_bytes(b"initrd" * 500)
    for path in (disk, kernel, initrd):
        path.chmod(0o444)
    added = datetime.now(UTC)
    return {
        "disk": Template(name="deb", kind="disk", directory=root, disk=disk, format="qcow2",
                         virtual_size=32 * 1024**2, sha256={}, added_at=added),
        "direct": Template(name="tiny", kind="direct", directory=root, disk=disk,
                           kernel=kernel, initrd=initrd, format="qcow2",
                           virtual_size=32 * 1024**2, cmdline="console=ttyS0", sha256={},
                           added_at=added),
    }


@pytest.mark.parametrize("scenario", sorted(DOMAINS))
def test_defined_domains_are_valid_and_point_away_from_templates(
    real, project, scratch, scenario
) -> None:
    from corral.backends import BootSpec, NicSpec

    templates = _templates(scratch)
    wanted = DOMAINS[scenario]
    template = templates[wanted.boot.kind]
    disk = real.create_run_copy(project, wanted.host.name, template, None)
    seed = real.upload_seed(project, wanted.host.name, b"seed") if wanted.seed_path else None
    spec = replace(
        wanted, project=project, virt_type=real.resolve_virt_type("auto"),
        boot=BootSpec.from_template(template), disk_path=disk, seed_path=seed,
        nics=tuple(NicSpec(n.mac, network=f"{project}-x", name=n.name) for n in wanted.nics),
    )
    name = real.define_domain(spec)
    held = real.conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    validate(held, "domain", f"{scenario} as libvirtd holds it")
    root = etree.fromstring(held.encode())
    source = root.find("devices/disk/backingStore/source")
    assert source.get("file") == str(template.disk)
    assert source.find("seclabel").attrib == {"model": "dac", "relabel": "no"}
    pool_dir = str(scratch / "runs" / project)
    for tag in ("kernel", "initrd"):
        path = root.findtext(f"os/{tag}")
        if wanted.boot.kind == "direct":
            assert path.startswith(pool_dir + "/boot-"), path
            original = template.kernel if tag == "kernel" else template.initrd
            assert Path(path).read_bytes() == Path(original).read_bytes()
        else:
            assert path is None
    real.define_domain(replace(spec, host=spec.host.model_copy(update={"memory_mib": 200})))
    again = real.conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    validate(again, "domain", f"{scenario} redefined")
    assert len(etree.fromstring(again.encode()).findall("devices/disk/backingStore")) == 1
    # The boot copies go with the project's last host.
    real.undefine(name)
    real.delete_volumes(project, wanted.host.name)
    pool = real.conn.storagePoolLookupByName(f"corral-{project}")
    assert pool.listVolumes() == []


def test_defined_networks_pools_and_volumes_are_valid(real, project, scratch) -> None:
    for scenario, (switch, leases) in sorted(NETWORKS.items()):
        root = network_xml.build_network(project, switch, leases)
        network = real.conn.networkDefineXML(network_xml.to_string(root))
        try:
            validate(network.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE), "network", scenario)
        finally:
            network.undefine()
    templates = _templates(scratch)
    real.create_run_copy(project, "web", templates["disk"], None)
    real.upload_seed(project, "web", b"seed")
    pool = real.conn.storagePoolLookupByName(f"corral-{project}")
    validate(pool.XMLDesc(0), "storagepool", "pool")
    for volume in pool.listAllVolumes(0):
        validate(volume.XMLDesc(0), "storagevol", volume.name())


def _subnet() -> str:
    return f"10.252.{random.randrange(2, 250)}"


def test_a_running_network_is_edited_in_place(real, project) -> None:
    net = _subnet()
    name = real.ensure_network(project, Switch(name="lan", address=f"{net}.1/24"))
    network = real.conn.networkLookupByName(name)
    uuid = network.UUIDString()
    root = inactive_root(network)
    etree.SubElement(root, "mtu", size="1400")
    etree.SubElement(root, "portgroup", name="web-ports")
    dns = etree.SubElement(root, "dns")
    etree.SubElement(etree.SubElement(dns, "host", ip=f"{net}.5"), "hostname").text = "files"
    real.conn.networkDefineXML(etree.tostring(root, encoding="unicode"))

    changed = Switch(name="lan", address=f"{net}.1/25")
    real.ensure_network(project, changed)
    network = real.conn.networkLookupByName(name)
    assert network.isActive() and network.UUIDString() == uuid
    for flags, what in ((libvirt.VIR_NETWORK_XML_INACTIVE, "config"), (0, "live")):
        xml = network.XMLDesc(flags)
        validate(xml, "network", f"edited network ({what})")
        now = etree.fromstring(xml.encode())
        assert now.find("mtu").get("size") == "1400", what
        assert now.find("portgroup[@name='web-ports']") is not None, what
        assert now.findtext("dns/host/hostname") == "files", what
        assert now.find("ip").get("prefix") == "25", what
    shown = subprocess.run(
        ["ip", "-o", "link", "show", "dev", network.bridgeName()], capture_output=True, text=True,
    ).stdout
    assert "mtu 1400" in shown
    (seen,) = real.observe(project).networks
    assert seen.model == changed


def test_a_nic_left_unplugged_is_reported(real) -> None:
    tap = Tap("xv-guest", "52:54:00:de:ad:01", "xvnotap0")
    with pytest.raises(BackendError) as caught:
        networks._rebridge(real.conn, "xv-net", "xvnobridge0", [tap])
    message = caught.value.message
    assert "domain xv-guest NIC 52:54:00:de:ad:01 (tap xvnotap0)" in message
    assert "network xv-net was restarted" in message


def test_observe_leaves_pools_as_they_are(real, project, scratch) -> None:
    templates = _templates(scratch)
    real.create_run_copy(project, "web", templates["disk"], None)
    real.upload_seed(project, "web", b"seed")
    pool = real.conn.storagePoolLookupByName(f"corral-{project}")
    pool.destroy()

    def states() -> dict[str, bool]:
        return {p.name(): bool(p.isActive()) for p in real.conn.listAllStoragePools(0)}

    before = states()
    observed = real.observe(project)
    assert states() == before and not pool.isActive()
    assert {(v.host, v.kind, v.backing) for v in observed.volumes} == {
        ("web", "disk", str(templates["disk"].disk)), ("web", "seed", None),
    }
    real.observe()
    assert states() == before


def test_a_network_with_a_legacy_mark_is_recognised_and_upgraded_live(real, project) -> None:
    switch = Switch(name="lan", address=f"{_subnet()}.1/24")
    root = network_xml.build_network(project, switch)
    root.find("portgroup").set("name", legacy_network_mark(project, switch))
    network = real.conn.networkDefineXML(etree.tostring(root, encoding="unicode"))
    network.create()
    bridge_before = network.bridgeName()
    (seen,) = real.observe(project).networks
    assert seen.model == switch

    real.ensure_network(project, switch)
    assert network.isActive() and network.bridgeName() == bridge_before
    for flags in (libvirt.VIR_NETWORK_XML_INACTIVE, 0):
        xml = network.XMLDesc(flags)
        validate(xml, "network", "upgraded mark")
        names_now = [g.get("name") for g in etree.fromstring(xml.encode()).findall("portgroup")]
        assert names_now == [network_xml.mark_name(project, switch)]
    assert real.observe(project).networks[0].model == switch


def test_a_boot_copy_cut_short_is_written_again(real, project, scratch) -> None:
    from corral.backends.libvirt import storage, templatestore

    kernel = _templates(scratch)["direct"].kernel
    file = templatestore.template_file("direct", kernel, None)
    pool = storage.ensure_pool(real.conn, project, str(scratch / "runs"))
    stage = storage.stage_boot_file
    path = Path(stage(real.conn, pool, file, "vmlinuz", storage.BootCopies()))
    assert path.read_bytes() == kernel.read_bytes()
    path.write_bytes(bytes(len(kernel.read_bytes())))  # a run killed after create
    again = stage(real.conn, pool, file, "vmlinuz", storage.BootCopies())
    assert again == str(path) and path.read_bytes() == kernel.read_bytes()

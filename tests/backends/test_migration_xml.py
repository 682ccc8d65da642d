"""The XML a move writes: the sized volume a cold copy is streamed into, and a
domain's XML retargeted for the target (every volume path and the template
turned into the target's, on two test-driver hosts with different paths),
valid against libvirt's schemas."""

from __future__ import annotations

import libvirt
import pytest
from xmlvalid import validate

from corral.backends.libvirt import migration
from corral.errors import NotFoundError


def test_the_volume_a_copy_fills_is_valid_and_sparse() -> None:
    xml = migration._sized_volume_xml("web.qcow2", 6_946_816)
    validate(xml, "storagevol", "cold copy volume")
    assert "<allocation unit=\"bytes\">0</allocation>" in xml


def test_a_retargeted_domain_is_valid() -> None:
    conn = libvirt.open("test:///default")
    try:
        domain = conn.lookupByName("test")
        xml = migration.retarget(domain.XMLDesc(0), conn, conn, "test", "h2")
    finally:
        conn.close()
    validate(xml, "domain", "retargeted domain")


NODE = (
    "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>1</cores><threads>1</threads>"
    "<active>1</active><mhz>1000</mhz><model>x</model></cpu><memory>1048576</memory></node>"
)


KERNEL = "0123456789abcdef"  # the digest in boot copies' names


def _host(node: str, runs: str, template: str, name: str) -> libvirt.virConnect:
    """A test-driver service host ``name`` of its own whose project pool is at ``runs``,
    holding its own copy of the kernel."""
    conn = libvirt.open(f"test://{node}")
    pool = conn.storagePoolCreateXML(
        f"<pool type='dir'><name>corral-p</name><target><path>{runs}</path></target></pool>", 0
    )
    pool.createXML(
        "<volume><name>web.qcow2</name><capacity>1048576</capacity><target>"
        "<format type='qcow2'/></target><backingStore>"
        f"<path>{template}</path><format type='qcow2'/></backingStore></volume>", 0
    )
    pool.createXML(f"<volume><name>boot-{KERNEL}-{name}-vmlinuz</name>"
                   "<capacity>4096</capacity></volume>", 0)
    return conn


DOMAIN = f"""<domain type='test'><name>p-web</name><memory>131072</memory>
<os><type>hvm</type><kernel>/here/p/boot-{KERNEL}-h1-vmlinuz</kernel></os>
<devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
<source file='/here/p/web.qcow2'/>
<backingStore type='file'><format type='qcow2'/><source file='/here/t/disk.qcow2'/>
</backingStore><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><source file='/srv/not-a-volume.img'/>
<target dev='vdb' bus='virtio'/></disk>
</devices></domain>"""


def test_retargeting_names_the_targets_volumes_and_template(tmp_path) -> None:
    node = tmp_path / "node.xml"
    node.write_text(NODE)
    here = _host(str(node), "/here/p", "/here/t/disk.qcow2", "h1")
    there = _host(str(node), "/there/p", "/there/t/disk.qcow2", "h2")
    try:
        xml = migration.retarget(DOMAIN, here, there, "p-web", "h2")
    finally:
        here.close()
        there.close()
    assert f"<kernel>/there/p/boot-{KERNEL}-h2-vmlinuz</kernel>" in xml  # the target's copy
    assert "<source file=\"/there/p/web.qcow2\"/>" in xml
    assert "<source file=\"/there/t/disk.qcow2\"/>" in xml  # the target's template
    assert "<source file=\"/srv/not-a-volume.img\"/>" in xml  # not libvirt's: as it was
    validate(xml, "domain", "retargeted domain")


def test_retargeting_refuses_a_volume_the_target_lacks(tmp_path) -> None:
    node = tmp_path / "node.xml"
    node.write_text(NODE)
    here = _host(str(node), "/here/p", "/here/t/disk.qcow2", "h1")
    there = libvirt.open(f"test://{node}")
    try:
        with pytest.raises(NotFoundError, match=r"no volume web\.qcow2 in pool corral-p"):
            migration.retarget(DOMAIN, here, there, "p-web", "h2")
    finally:
        here.close()
        there.close()


@pytest.mark.parametrize(("source", "wanted"), [
    (f"boot-{KERNEL}-h1-vmlinuz", f"boot-{KERNEL}-rack-2-vmlinuz"),
    (f"boot-{KERNEL}-rack-1-initrd.img", f"boot-{KERNEL}-rack-2-initrd.img"),
    (f"boot-{KERNEL}-vmlinuz", f"boot-{KERNEL}-rack-2-vmlinuz"),  # named before owners
    ("web.qcow2", "web.qcow2"),
    ("boot-short-vmlinuz", "boot-short-vmlinuz"),
    (f"boot-{KERNEL}-h1-notes.txt", f"boot-{KERNEL}-h1-notes.txt"),
])
def test_a_moved_guest_boots_from_the_targets_own_copy(source: str, wanted: str) -> None:
    from corral.backends.libvirt import storage

    assert storage.boot_copy_for(source, "rack-2") == wanted

"""Existing image files attached as they are, and new raw extra disks."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import libvirt
import pytest
from lxml import etree
from scenarios import direct_template, host, spec

from corral.backends.base import DiskSpec, StoragePlace
from corral.backends.libvirt import attached
from corral.backends.libvirt.backend import LibvirtBackend
from corral.model.project import Disk, DiskType

NODE = """\
<node>
  <pool type="dir">
    <name>images</name>
    <target><path>/srv/images</path></target>
    <volume type="file"><name>data.raw</name><capacity unit="M">16</capacity>
      <target><format type="raw"/></target></volume>
    <volume type="file"><name>logs.qcow2</name><capacity unit="M">16</capacity>
      <target><format type="qcow2"/></target></volume>
  </pool>
</node>
"""


@pytest.fixture
def images(tmp_path: Path) -> LibvirtBackend:
    (tmp_path / "node.xml").write_text(NODE)
    backend = LibvirtBackend("local", f"test://{tmp_path}/node.xml", runs_dir="/srv/runs")
    yield backend
    backend.close()


def _pools(backend: LibvirtBackend) -> list[str]:
    return sorted(p.name() for p in backend.conn.listAllStoragePools(0))


def test_an_image_format_is_read_through_libvirt_and_a_missing_file_is_none(images) -> None:
    assert images.image_format("/srv/images/data.raw") == "raw"
    assert images.image_format("/srv/images/logs.qcow2") == "qcow2"
    assert images.image_format("/srv/images/none.img") is None
    assert images.image_format("/no/such/dir/x.img") is None
    assert _pools(images) == ["images"]  # the probe's transient pool is gone


def test_a_raw_extra_disk_is_a_raw_volume_observed_and_pruned_like_a_qcow2_one(backend) -> None:
    made = backend.create_data_disk("lab", "web", "scratch", 64, StoragePlace(), raw=True)
    assert (made.format, made.path.rsplit("/", 1)[-1]) == ("raw", "web.scratch.raw")
    (volume,) = [v for v in backend.observe("lab").volumes if v.kind == "data"]
    assert (volume.host, volume.disk, volume.capacity) == ("web", "scratch", 64 * 1024 * 1024)
    pool = backend.conn.storagePoolLookupByName("corral-lab")
    fmt = etree.fromstring(pool.storageVolLookupByName("web.scratch.raw").XMLDesc(0).encode())
    assert fmt.find("target/format").get("type") == "raw"
    backend.delete_data_disk("lab", "web", "scratch")
    assert [v for v in backend.observe("lab").volumes if v.kind == "data"] == []


def test_a_probed_image_keeps_its_first_format_while_its_file_stays(backend) -> None:
    """What a guest writes into a raw image (a qcow2 header naming a backing file
    of the host) must not change how the host reads it at the next redefinition."""
    model = host("img", disks=(Disk(name="root", path="/guests/a.img", type=DiskType.IMAGE),))
    first = DiskSpec("root", "/guests/a.img", format="raw", probed=True)
    name = backend.define_domain(replace(spec(model, direct_template()), disks=(first,)))

    def driver_of_root() -> tuple[str, str]:
        root = etree.fromstring(backend.describe(name).encode())
        (disk,) = [d for d in root.iterfind("devices/disk") if d.findtext("serial") == "root"]
        return disk.find("source").get("file"), disk.find("driver").get("type")

    reprobed = replace(first, format="qcow2")
    backend.define_domain(replace(spec(model, direct_template()), disks=(reprobed,)))
    assert driver_of_root() == ("/guests/a.img", "raw")
    other = replace(reprobed, path="/guests/b.img")
    backend.define_domain(replace(spec(model, direct_template()), disks=(other,)))
    assert driver_of_root() == ("/guests/b.img", "qcow2")
    given = DiskSpec("root", "/guests/b.img", format="raw")  # the file says: no probing
    backend.define_domain(replace(spec(model, direct_template()), disks=(given,)))
    assert driver_of_root() == ("/guests/b.img", "raw")


@pytest.mark.libvirt
def test_the_real_daemon_reads_formats_and_leaves_the_directory_as_it_was(scratch) -> None:
    images = scratch / "images"
    images.mkdir(mode=0o750)
    (images / "a.raw").write_bytes(b"\1" * 65536)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(images / "b.qcow2"), "8M"],
                   check=True)
    before = {p.name: (p.stat().st_mode, p.stat().st_mtime_ns) for p in images.iterdir()}
    mode = os.stat(images).st_mode
    conn = libvirt.open("qemu:///system")
    try:
        pools = {p.name() for p in conn.listAllStoragePools(0)}
        assert attached.image_format(conn, str(images / "a.raw")) == "raw"
        assert attached.image_format(conn, str(images / "b.qcow2")) == "qcow2"
        assert attached.image_format(conn, str(images / "c.img")) is None
        assert {p.name() for p in conn.listAllStoragePools(0)} == pools
    finally:
        conn.close()
    assert {p.name: (p.stat().st_mode, p.stat().st_mtime_ns) for p in images.iterdir()} == before
    assert os.stat(images).st_mode == mode

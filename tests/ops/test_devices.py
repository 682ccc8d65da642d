"""A host's devices end to end on a test-driver node that has a bridge ``br-lab``
and a pool of existing images at ``/srv/images``: interfaces on that bridge and
on switches of different kinds per interface; disks that attach those images."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from lxml import etree

from corral.config import parse_site_config
from corral.errors import SourceErrors
from corral.images.seed import seed_documents
from corral.ops import projects
from corral.ops.session import Session

NODE = """\
<node>
  <interface type="bridge" name="br-lab">
    <start mode="onboot"/>
    <bridge stp="off"/>
  </interface>
  <interface type="ethernet" name="eth9">
    <start mode="onboot"/>
    <mac address="52:54:00:99:99:99"/>
  </interface>
  <pool type="dir">
    <name>images</name>
    <target><path>/srv/images</path></target>
    <volume type="file"><name>profiledev.img</name><capacity unit="M">16</capacity>
      <target><format type="raw"/></target></volume>
    <volume type="file"><name>logs.qcow2</name><capacity unit="M">16</capacity>
      <target><format type="qcow2"/></target></volume>
  </pool>
</node>
"""

SITE = """
[defaults]
template = "base"
virt_type = "qemu"

[paths]
templates = "{root}/templates"
state = "{root}/state.db"
runs = "{root}/runs"

[service_hosts.local]
uri = "test://{root}/node.xml"
"""

PROJECT = """\
global {{ project nets }}
switch out {{
    address 10.31.0.1/24
    nat
}}
switch lan {{ }}
host gw {{
    qemu
    wait none
    network eth0 {{
        switch out
        address dhcp
    }}
    network eth1 {{
        switch lan
        address 10.32.0.5
        netmask 24
    }}
    network eth2 {{
        bridge {bridge}
        address 192.168.50.7
        netmask 255.255.255.0
        gateway 192.168.50.1
    }}
}}
"""


@pytest.fixture
def node_session(tmp_path: Path):
    (tmp_path / "node.xml").write_text(NODE)
    config = tmp_path / "corral.toml"
    config.write_text(SITE.format(root=tmp_path))
    session = Session(parse_site_config(config.read_text(), config))
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
    session.registry.add("base", base)
    yield session
    session.close()


def _write(tmp_path: Path, bridge: str) -> Path:
    path = tmp_path / "nets.corral"
    path.write_text(PROJECT.format(bridge=bridge))
    return path


def test_one_host_on_a_nat_switch_an_isolated_one_and_a_host_bridge(node_session, tmp_path):
    path = _write(tmp_path, "br-lab")
    assert projects.up(node_session, path, wait=False).ok
    conn = node_session.backend("local").conn
    root = etree.fromstring(conn.lookupByName("nets-gw").XMLDesc(0).encode())
    nics = {
        nic.find("source").get("network") or nic.find("source").get("bridge"): nic.get("type")
        for nic in root.iterfind("devices/interface")
    }
    assert nics == {"nets-out": "network", "nets-lan": "network", "br-lab": "bridge"}
    modes = {
        name: etree.fromstring(conn.networkLookupByName(name).XMLDesc(0).encode())
        .find("forward")
        for name in ("nets-out", "nets-lan")
    }
    assert modes["nets-out"].get("mode") == "nat" and modes["nets-lan"] is None
    host = projects.load_source(path, node_session.site).hosts["gw"]
    config = seed_documents(host, "nets").network_config
    assert "192.168.50.7/24" in config and "gateway4: 192.168.50.1" in config
    assert projects.plan_source(node_session, path).empty


def test_a_bridge_the_service_host_lacks_is_a_positioned_error_before_anything_is_built(
    node_session, tmp_path
):
    for missing in ("br-none", "eth9"):  # absent, and present but no bridge
        path = _write(tmp_path, missing)
        with pytest.raises(SourceErrors) as caught:
            projects.plan_source(node_session, path)
        (problem,) = caught.value.diagnostics
        assert (problem.span.file, problem.span.line) == (str(path), 7)  # host gw
        assert problem.message == (
            f"host gw: interface eth2 attaches to bridge {missing}, which service host "
            "local does not have"
        )
        with pytest.raises(SourceErrors):
            projects.up(node_session, path, wait=False)
        conn = node_session.backend("local").conn
        assert conn.listAllDomains(0) == [] and conn.listAllNetworks(0) == []


DISKS = """\
global {{ project store }}
host vm {{
    qemu
    wait none
    disk root {{ path {root} }}
    disk logs {{
        path /srv/images/logs.qcow2
        type qcow2
    }}
    disk scratch {{
        size 64M
        type raw
    }}
}}
"""


def _disks_file(tmp_path: Path, root: str) -> Path:
    path = tmp_path / "store.corral"
    path.write_text(DISKS.format(root=root))
    return path


def _image_volumes(session) -> list[str]:
    pool = session.backend("local").conn.storagePoolLookupByName("images")
    return sorted(v.name() for v in pool.listAllVolumes(0))


def test_existing_images_are_attached_and_left_by_remove(node_session, tmp_path):
    path = _disks_file(tmp_path, "/srv/images/profiledev.img")
    assert projects.up(node_session, path, wait=False).ok
    conn = node_session.backend("local").conn
    root = etree.fromstring(conn.lookupByName("store-vm").XMLDesc(0).encode())
    disks = {
        d.findtext("serial"): (d.find("source").get("file"), d.find("driver").get("type"))
        for d in root.iterfind("devices/disk") if d.findtext("serial")
    }
    runs = node_session.site.paths.runs
    assert disks == {
        "root": ("/srv/images/profiledev.img", "raw"),
        "logs": ("/srv/images/logs.qcow2", "qcow2"),
        "scratch": (f"{runs}/store/vm.scratch.raw", "raw"),
    }
    assert projects.plan_source(node_session, path).empty
    assert projects.plan_source(node_session, path).notes == ()
    projects.remove(node_session, "store")
    assert _image_volumes(node_session) == ["logs.qcow2", "profiledev.img"]
    assert conn.listAllDomains(0) == []


def test_a_missing_image_or_one_in_corrals_storage_is_refused_before_anything_is_built(
    node_session, tmp_path
):
    runs = node_session.site.paths.runs
    for root, message in (
        ("/srv/images/gone.img",
         "host vm: disk root: service host local has no image file /srv/images/gone.img"),
        (f"{runs}/store/other.qcow2",
         f"host vm: disk root: {runs}/store/other.qcow2 is in {runs}, where Corral keeps "
         "the project's own volumes and deletes them with their hosts"),
    ):
        path = _disks_file(tmp_path, root)
        with pytest.raises(SourceErrors) as caught:
            projects.plan_source(node_session, path)
        (problem,) = caught.value.diagnostics
        assert (problem.span.file, problem.span.line, problem.message) == (
            str(path), 2, message
        )
        with pytest.raises(SourceErrors):
            projects.up(node_session, path, wait=False)
        assert node_session.backend("local").conn.listAllDomains(0) == []

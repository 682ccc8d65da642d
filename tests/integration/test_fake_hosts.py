"""scripts/fake-hosts: two extra libvirt service hosts on this machine, over TLS.

The harness is brought up once for the module into a scratch state directory;
the tests reach each fake host through Corral's own CLI and libvirt-python,
start a domain on one, share a storage directory between them, cross the site
bridge, and the last one takes it down and checks nothing is left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from .fakehosts import FakeHosts, fake_hosts_up

pytestmark = pytest.mark.libvirt

HOSTS = ("h1", "h2")
PROBE_XML = """<domain type='qemu'>
  <name>cfh-probe</name>
  <memory unit='MiB'>32</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
</domain>"""


@pytest.fixture(scope="module")
def fake_hosts() -> Iterator[FakeHosts]:
    with fake_hosts_up(len(HOSTS)) as hosts:
        yield hosts


def _host_uuid(uri: str) -> str:
    conn = libvirt.open(uri)
    try:
        return etree.fromstring(conn.getCapabilities().encode()).findtext("host/uuid") or ""
    finally:
        conn.close()


def test_up_is_quick_and_writes_the_site_config(fake_hosts: FakeHosts) -> None:
    assert fake_hosts.seconds < 20, f"up took {fake_hosts.seconds:.1f} s"
    assert set(fake_hosts.uris) == {"local", *HOSTS}
    assert fake_hosts.uris["local"] == "qemu:///system"
    for name in HOSTS:
        assert fake_hosts.uris[name].startswith(f"qemu+tls://10.{fake_hosts.net}.")
        assert f"pkipath={fake_hosts.state / 'pki'}" in fake_hosts.uris[name]


def test_up_again_is_fine(fake_hosts: FakeHosts) -> None:
    again = fake_hosts.script("up", str(len(HOSTS)), str(fake_hosts.toml))
    assert again.returncode == 0, again.stderr
    assert "already up" in again.stderr
    other = fake_hosts.script("up", "3", str(fake_hosts.toml))
    assert other.returncode != 0
    assert "down" in other.stderr


def test_each_host_answers_corral_over_tls(fake_hosts: FakeHosts) -> None:
    facts = {}
    for name in HOSTS:
        result = fake_hosts.corral("info", "-s", name, "--json")
        assert result.returncode == 0, result.stderr
        facts[name] = json.loads(result.stdout)
        assert facts[name]["service_host"] == name
        assert facts[name]["uri"] == fake_hosts.uris[name]
        assert facts[name]["hostname"] == f"fake-{name}"
        assert facts[name]["virt_types"] == ["qemu"]  # /dev/kvm masked as on local
    uuids = {name: _host_uuid(fake_hosts.uris[name]) for name in HOSTS}
    assert len(set(uuids.values())) == len(HOSTS)
    assert uuids == {name: fake_hosts.record(name)["host_uuid"] for name in HOSTS}


def test_a_domain_starts_quickly_on_a_fake_host(fake_hosts: FakeHosts) -> None:
    conn = libvirt.open(fake_hosts.uris["h1"])
    try:
        domain = conn.defineXML(PROBE_XML)
        try:
            began = time.monotonic()
            domain.create()
            seconds = time.monotonic() - began
            assert domain.isActive()
            assert seconds < 5, f"domain start took {seconds:.1f} s"
            # The guest runs on h1 alone: h2 and local do not know it.
            other = libvirt.open(fake_hosts.uris["h2"])
            try:
                assert "cfh-probe" not in [d.name() for d in other.listAllDomains()]
            finally:
                other.close()
            domain.destroy()
        finally:
            domain.undefine()
    finally:
        conn.close()


def test_the_shared_directory_is_the_same_on_every_host(fake_hosts: FakeHosts) -> None:
    target = fake_hosts.state / "shared" / "pool"
    target.mkdir()
    pool_xml = (f"<pool type='dir'><name>cfh-shared</name>"
                f"<target><path>{target}</path></target></pool>")
    vol_xml = ("<volume><name>v1.qcow2</name><capacity unit='M'>8</capacity>"
               "<target><format type='qcow2'/></target></volume>")
    one, two = libvirt.open(fake_hosts.uris["h1"]), libvirt.open(fake_hosts.uris["h2"])
    try:
        pool_one = one.storagePoolCreateXML(pool_xml)
        pool_one.createXML(vol_xml)
        pool_two = two.storagePoolCreateXML(pool_xml)
        assert pool_two.listVolumes() == ["v1.qcow2"]
        assert pool_two.storageVolLookupByName("v1.qcow2").path() == str(target / "v1.qcow2")
        pool_one.destroy()
        pool_two.destroy()
    finally:
        one.close()
        two.close()


def test_the_site_bridge_joins_every_host(fake_hosts: FakeHosts) -> None:
    holder = str(fake_hosts.record("h1")["holder"])
    for address in (fake_hosts.site_address(1), fake_hosts.site_address(2)):
        ping = subprocess.run(["ping", "-c", "1", "-W", "2", address], capture_output=True,
                              text=True, check=False)
        assert ping.returncode == 0, ping.stdout
    across = subprocess.run(["nsenter", "-t", holder, "-n", "ping", "-c", "1", "-W", "2",
                             fake_hosts.site_address(2)],
                            capture_output=True, text=True, check=False)
    assert across.returncode == 0, across.stdout


PROJECT = """
global { project fhit }
superclass basic {
    template tiny
    network eth1 { switch site }
}
host a { superclass basic; service_host h1; network eth0 { switch lan1; address dhcp } }
host b { superclass basic; service_host h2; network eth0 { switch lan2; address dhcp } }
switch lan1 { address 10.249.1.1/24 }
switch lan2 { address 10.249.2.1/24 }
switch site { bridge BRIDGE }
"""


def test_corral_brings_up_a_project_across_two_fake_hosts(
    fake_hosts: FakeHosts, tmp_path: Path
) -> None:
    """The tiny template reaches each host by upload (its registry is not there);
    each host keeps its own run copies, based on its own template copy; the
    `site` switch puts both guests on the bridge that spans hosts."""
    built = fake_hosts.corral("template", "build", "tiny")
    assert built.returncode == 0, built.stderr
    project = tmp_path / "fhit.corral"
    project.write_text(PROJECT.replace("BRIDGE", fake_hosts.bridge))
    try:
        up = fake_hosts.corral("up", str(project))
        assert up.returncode == 0, up.stdout + up.stderr
        status = fake_hosts.corral("status", "-p", "fhit", "--json", "--timeout", "60")
        assert status.returncode == 0, status.stderr
        rows = {row["host"]: row for row in json.loads(status.stdout)["rows"]}
        assert {h: (r["service_host"], r["state"]) for h, r in rows.items()} == {
            "a": ("h1", "running"), "b": ("h2", "running")}
        for host, name in (("a", "h1"), ("b", "h2")):
            conn = libvirt.open(fake_hosts.uris[name])
            try:
                xml = etree.fromstring(conn.lookupByName(f"fhit-{host}").XMLDesc().encode())
                bridges = [s.get("bridge") for s in xml.iterfind("devices/interface/source")]
                assert fake_hosts.bridge in bridges
                pool = conn.storagePoolLookupByName("corral-fhit")
                volumes = pool.listVolumes()
                other = "b" if host == "a" else "a"
                assert f"{host}.qcow2" in volumes  # its run copy, and not the other's
                assert f"{other}.qcow2" not in volumes
                run_copy = etree.fromstring(
                    pool.storageVolLookupByName(f"{host}.qcow2").XMLDesc().encode())
                backing = run_copy.findtext("backingStore/path") or ""
                store = conn.storagePoolLookupByName("corral.templates")
                assert backing in [v.path() for v in store.listAllVolumes()], backing
            finally:
                conn.close()
    finally:
        removed = fake_hosts.corral("remove", "-p", "fhit", "--yes")
        assert removed.returncode == 0, removed.stdout + removed.stderr


def _pids_in_netns_of(pid: int) -> set[int]:
    try:
        target = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return set()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                st = os.stat(entry / "ns" / "net")
            except OSError:
                continue
            if (st.st_ino, st.st_dev) == (target.st_ino, target.st_dev):
                found.add(int(entry.name))
    return found


def test_down_leaves_nothing_behind(fake_hosts: FakeHosts) -> None:
    ours: set[int] = set()
    for name in HOSTS:
        ours |= _pids_in_netns_of(int(str(fake_hosts.record(name)["holder"])))
    commands = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in ours}
    assert {"libvirtd", "virtlogd", "sleep"} <= commands

    down = fake_hosts.script("down")
    assert down.returncode == 0, down.stderr

    assert not [pid for pid in ours if Path(f"/proc/{pid}").exists()]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert f"{fake_hosts.link}-" not in links.stdout
    mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True,
                            text=True, check=True)
    assert str(fake_hosts.state) not in mounts.stdout
    assert not fake_hosts.state.exists()
    again = fake_hosts.script("down")
    assert again.returncode == 0, again.stderr

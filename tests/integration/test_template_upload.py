"""Templates reach remote service hosts by libvirt upload, and are reused there.

The fake hosts do not see the site's template directory (an empty tmpfs of
their own), so a guest that boots on h1 or h2 proves its template travelled
through the storage API. One project puts a guest on each of h1 and h2 with
``filepath`` in the directory both hosts see (their boot copies meet there);
a second project reuses h1's copy without uploading it again; a copy
corrupted through the API is found by ``template copies --verify`` and
deleted (its next use uploads it again, see tests/backends/test_template_store.py).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from .fakehosts import FakeHosts

pytestmark = pytest.mark.libvirt

POOL = "corral.templates"
SHARED = """
global { project tup1 }
superclass basic {
    template tiny
    filepath SHARED
}
host a { superclass basic; service_host h1; network eth0 { switch lan1; address dhcp } }
host b { superclass basic; service_host h2; network eth0 { switch lan2; address dhcp } }
switch lan1 { address 10.248.1.1/24 }
switch lan2 { address 10.248.3.1/24 }
"""
SECOND = """
global { project tup2 }
host c {
    template tiny
    service_host h1
    network eth0 { switch lan; address dhcp }
}
switch lan { address 10.248.2.1/24 }
"""


def _manifest(hosts: FakeHosts) -> dict[str, str]:
    data = json.loads((hosts.state / "site" / "templates" / "tiny" / "manifest.json").read_text())
    digests: dict[str, str] = data["sha256"]
    return digests


def _copies(uri: str) -> dict[str, tuple[str, str]]:
    """Volume name -> (sha256 of its bytes read back through a stream, mtime)."""
    conn = libvirt.open(uri)
    try:
        pool = conn.storagePoolLookupByName(POOL)
        pool.refresh(0)
        found = {}
        for volume in pool.listAllVolumes(0):
            digest = hashlib.sha256()
            size = volume.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)[2]
            stream = conn.newStream(0)
            volume.download(stream, 0, size, 0)
            got = 0
            while got < size:
                data = stream.recv(1 << 20)
                digest.update(data)
                got += len(data)
            stream.finish()
            xml = etree.fromstring(volume.XMLDesc(0).encode())
            found[volume.name()] = (digest.hexdigest(), xml.findtext("target/timestamps/mtime"))
        return found
    finally:
        conn.close()


@pytest.fixture(scope="module")
def files(three_hosts: FakeHosts, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Path]:
    """The two project files; whatever they brought up is removed at the end."""
    made = tmp_path_factory.mktemp("tup")
    shared = three_hosts.state / "shared"
    (made / "tup1.corral").write_text(SHARED.replace("SHARED", str(shared)))
    (made / "tup2.corral").write_text(SECOND)
    try:
        yield made
    finally:
        for project in ("tup1", "tup2"):
            three_hosts.corral("remove", "-p", project, "--yes")


def test_templates_are_uploaded_verified_and_reused(
    three_hosts: FakeHosts, files: Path
) -> None:
    hosts = three_hosts
    manifest = hosts.state / "site" / "templates" / "tiny" / "manifest.json"
    for name in ("h1", "h2"):  # the registry is not there: templates must travel
        holder = str(hosts.record(name)["holder"])
        seen = subprocess.run(["nsenter", "-t", holder, "-m", "test", "-e", str(manifest)],
                              check=False)
        assert seen.returncode == 1, f"{name} sees the site's templates"
    up = hosts.corral("up", str(files / "tup1.corral"))
    assert up.returncode == 0, up.stdout + up.stderr
    digests = _manifest(hosts)
    before = {}
    for name in ("h1", "h2"):
        copies = _copies(hosts.uris[name])
        assert {v: d for v, (d, _) in copies.items()} == {
            f"tiny.{digest[:16]}.{file}": digest for file, digest in digests.items()
            if file != "manifest.json"
        }, f"{name} holds {sorted(copies)}"
        before[name] = copies
    # both hosts' boot copies are in the one shared pool directory, each service
    # host's under its own name (two daemons never create one file)
    shared = hosts.state / "shared" / "tup1"
    boot = sorted(p.name for p in shared.iterdir() if p.name.startswith("boot-"))
    assert len(boot) == 4, sorted(p.name for p in shared.iterdir())
    assert {name.split("-")[2] for name in boot} == {"h1", "h2"}, boot

    second = hosts.corral("up", str(files / "tup2.corral"))
    assert second.returncode == 0, second.stdout + second.stderr
    assert _copies(hosts.uris["h1"]) == before["h1"]  # reused: same bytes, never rewritten

    listed = hosts.corral("template", "copies", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    rows = json.loads(listed.stdout)["copies"]
    assert {(r["service_host"], r["file"]) for r in rows if r["service_host"] != "h3"} == {
        (h, f) for h in ("h1", "h2") for f in ("disk.qcow2", "vmlinuz", "initrd.img")}


def test_a_corrupted_copy_is_reported_and_dropped(three_hosts: FakeHosts, files: Path) -> None:
    hosts = three_hosts
    digest = _manifest(hosts)["disk.qcow2"]
    name = f"tiny.{digest[:16]}.disk.qcow2"
    conn = libvirt.open(hosts.uris["h2"])
    try:
        volume = conn.storagePoolLookupByName(POOL).storageVolLookupByName(name)
        stream = conn.newStream(0)
        volume.upload(stream, 4096, 4, 0)  # four bytes inside the copy: same size
        stream.send(b"evil")
        stream.finish()
    finally:
        conn.close()
    checked = hosts.corral("template", "copies", "--verify", "-s", "h2")
    assert checked.returncode == 5, checked.stdout + checked.stderr
    assert "service host h2" in checked.stdout and "template tiny" in checked.stdout
    assert name not in _copies(hosts.uris["h2"])
    again = hosts.corral("template", "copies", "--verify")
    assert again.returncode == 0, again.stdout + again.stderr


def test_remove_keeps_the_template_copies(three_hosts: FakeHosts, files: Path) -> None:
    """Both projects go (also the pool two service hosts shared); the copies are the
    site's templates, not a project's, and stay."""
    for project in ("tup1", "tup2"):
        removed = three_hosts.corral("remove", "-p", project, "--yes")
        assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not (three_hosts.state / "shared" / "tup1").exists()
    listed = three_hosts.corral("template", "copies", "--json", "-s", "h1")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert {r["file"] for r in json.loads(listed.stdout)["copies"]} == {
        "disk.qcow2", "vmlinuz", "initrd.img"}

"""Extra disks, ``filepath`` storage and ``autostart`` on the real libvirtd, seen from the guest.

One tiny guest with two extra disks in a ``filepath`` directory: the guest
finds them by serial; ``upgrade`` hot-plugs a third, unplugs one (its volume
kept until ``--prune``) and grows another while the guest runs; ``remove``
leaves nothing in the directory. An ``lvm`` host on a volume group the
service host lacks is refused before anything is built, naming the host.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from corral.backends.libvirt import names
from corral.ops import projects

from .guest_console import GuestConsole
from .support import (
    URI,
    Site,
    boot_volumes,
    libvirt_objects,
    node_superclass,
    project_name,
    remove_project,
    run_corral,
    wait_for,
    write_project,
)

pytestmark = pytest.mark.libvirt

MIB = 1024 * 1024


def project_text(name: str, shared: Path, disks: str) -> str:
    return f"""\
global {{
    project {name}
}}
{node_superclass("96M")}
host store {{
    superclass node
    filepath {shared}
    autostart yes
{disks}
}}
"""


FIRST = "    disk data { size 64M }\n    disk logs { size 32M }\n"
SECOND = "    disk data { size 96M }\n    disk extra { size 16M }\n"


def _serials(console: GuestConsole) -> dict[str, str]:
    """Guest block device -> serial, as the guest's kernel reports them."""
    out = console.run("for d in /sys/block/vd*; do echo ${d##*/}=$(cat $d/serial); done")
    return dict(re.findall(r"^(vd[a-z])=(\S*)$", out, re.MULTILINE))


def _sectors(console: GuestConsole, device: str) -> int:
    return int(console.run(f"cat /sys/block/{device}/size").strip())


def _live_disks(domain: str) -> dict[str, str]:
    """serial -> target of the running domain's disks with a serial."""
    conn = libvirt.open(URI)
    try:
        root = etree.fromstring(conn.lookupByName(domain).XMLDesc(0).encode())
    finally:
        conn.close()
    return {
        d.findtext("serial") or "": d.find("target").get("dev", "")
        for d in root.iterfind("devices/disk")
        if d.findtext("serial")
    }


def _autostart(domain: str) -> bool:
    conn = libvirt.open(URI)
    try:
        return bool(conn.lookupByName(domain).autostart())
    finally:
        conn.close()


def test_extra_disks_in_a_filepath_directory(site: Site, tiny, tmp_path: Path) -> None:
    name = project_name()
    shared = site.root / f"shared-{name}"  # a directory the QEMU user can reach
    path = write_project(tmp_path / "store.corral", project_text(name, shared, FIRST))
    domain = f"{name}-store"
    try:
        with site.session() as session:
            result = projects.up(session, path)
        assert result.ok, [(o.domain, o.reason) for o in result.readiness]
        here = shared / name
        # the kernel and initrd copies are beside the run copy, so every service
        # host that sees the directory finds them at the same path
        assert sorted(p.name for p in here.iterdir()) == sorted([
            "store-console.log", "store-seed.iso", "store.data.qcow2", "store.logs.qcow2",
            "store.qcow2",
            *boot_volumes(tiny.template),
        ])
        assert not libvirt_objects(name).volumes  # nothing in the runs directory's pool
        assert _autostart(domain)
        shown = run_corral(site, "status", "-p", name, "--json")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["rows"][0]["disks"] == [
            {"name": "data", "size_mib": 64}, {"name": "logs", "size_mib": 32}
        ]
        assert _live_disks(domain) == {"data": "vdc", "logs": "vdd"}
        with GuestConsole(domain) as console:
            assert _serials(console) == {"vda": "", "vdb": "", "vdc": "data", "vdd": "logs"}
            assert _sectors(console, "vdc") == 64 * MIB // 512

            write_project(path, project_text(name, shared, SECOND))
            changed = run_corral(site, "upgrade", "-f", str(path))
            assert changed.returncode == 0, changed.stderr
            assert "disk extra plugged in" in changed.stdout, changed.stdout
            assert "disk logs unplugged (its volume is kept" in changed.stdout
            wait_for(lambda: _live_disks(domain) == {"data": "vdc", "extra": "vde"}, 30,
                     "the guest to let go of disk logs")
            wait_for(lambda: _serials(console).get("vde") == "extra", 30,
                     "the guest to see the hot-plugged disk")
            assert _sectors(console, "vdc") == 96 * MIB // 512
        assert (here / "store.logs.qcow2").exists()

        planned = run_corral(site, "plan", str(path))
        assert planned.returncode == 0, planned.stdout + planned.stderr
        assert "disk logs of host store is no longer in the file" in planned.stdout

        pruned = run_corral(site, "upgrade", "-f", str(path), "--prune")
        assert pruned.returncode == 0, pruned.stderr
        assert not (here / "store.logs.qcow2").exists()
        assert (here / "store.data.qcow2").exists()
        assert run_corral(site, "plan", str(path)).returncode == 0

        removed = run_corral(site, "remove", "-p", name, "--yes")
        assert removed.returncode == 0, removed.stderr
        assert not here.exists()
        conn = libvirt.open(URI)
        try:
            pools = {p.name() for p in conn.listAllStoragePools(0)}
        finally:
            conn.close()
        assert names.directory_pool_name(name, str(shared)) not in pools
    finally:
        remove_project(site, name)


def test_lvm_on_a_missing_volume_group_is_refused_before_building(
    site: Site, tiny, tmp_path: Path
) -> None:
    name = project_name()
    text = f"""\
global {{ project {name} }}
{node_superclass("96M")}
host db {{
    superclass node
    lvm_vg corral-absent-vg
}}
"""
    path = write_project(tmp_path / "lvm.corral", text)
    try:
        done = run_corral(site, "up", str(path))
        assert done.returncode != 0
        assert (
            "host db: service host local has no LVM volume group 'corral-absent-vg'"
            in done.stderr
        ), done.stderr
        line = text.splitlines().index("host db {") + 1
        assert f"lvm.corral:{line}:1: error:" in done.stderr, done.stderr
        assert libvirt_objects(name).empty
    finally:
        remove_project(site, name)

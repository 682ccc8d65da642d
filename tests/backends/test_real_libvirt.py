"""The backend on the real local libvirtd (QEMU under TCG): storage, networks, a quick domain.

Each test uses a unique project name and removes everything it made. No guest
boots here: the domain has an empty disk and sits in the firmware, which is
enough for the lifecycle calls.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from corral.backends import BootSpec, DomainSpec, DomainState, NicSpec, ShutdownOutcome
from corral.backends.base import StoragePlace
from corral.errors import ConflictError
from corral.images.registry import Template
from corral.model import Host, Interface, Switch

pytestmark = pytest.mark.libvirt

URI = "qemu:///system"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def base(scratch: Path) -> Template:
    path = scratch / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "32M"], check=True)
    path.chmod(0o444)
    return Template(
        name="base", kind="disk", directory=scratch, disk=path, format="qcow2",
        virtual_size=32 * 1024**2, sha256={}, added_at=datetime.now(UTC),
    )


def test_run_copy_is_an_overlay_and_the_template_is_untouched(real, project, base) -> None:
    before = _sha256(base.disk)
    path = real.create_run_copy(project, "web", base, size_mib=64)
    info = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", path], capture_output=True, check=True,
    ).stdout)
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == str(base.disk)
    assert info["virtual-size"] == 64 * 1024**2
    assert real.create_run_copy(project, "web", base, size_mib=64) == path  # idempotent
    small = real.create_run_copy(project, "db", base, size_mib=None)
    assert json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", small], capture_output=True, check=True,
    ).stdout)["virtual-size"] == 32 * 1024**2

    seed = real.upload_seed(project, "web", b"seed-one" * 100)
    assert Path(seed).read_bytes() == b"seed-one" * 100
    assert real.upload_seed(project, "web", b"seed-two" * 50) == seed
    assert Path(seed).read_bytes() == b"seed-two" * 50

    kinds = {(v.host, v.kind) for v in real.observe(project).volumes}
    assert kinds == {("web", "disk"), ("web", "seed"), ("db", "disk")}
    real.delete_volumes(project, "web")
    assert {v.host for v in real.observe(project).volumes} == {"db"}
    assert _sha256(base.disk) == before


def test_network_with_an_address_gets_its_bridge_and_dhcp(real, project) -> None:
    switch = Switch(name="lan", address="10.251.7.1/24")
    name = real.ensure_network(project, switch)
    (seen,) = real.observe(project).networks
    assert seen.active and seen.name == name
    shown = subprocess.run(
        ["ip", "-o", "-4", "addr", "show", "dev", seen.bridge], capture_output=True, text=True,
    ).stdout
    assert "10.251.7.1/24" in shown
    lease = ("52:54:00:10:00:01", "10.251.7.10", "web")
    from corral.backends import StaticLease

    real.set_static_leases(name, [StaticLease(*lease)])  # live, through network.update
    live = real.conn.networkLookupByName(name).XMLDesc(0)
    assert "10.251.7.10" in live
    assert real.leases([name]) == {}
    real.remove_network(name)
    assert real.observe(project).networks == ()


def test_quick_domain_lifecycle(real, project, base) -> None:
    network = real.ensure_network(project, Switch(name="lan"))
    host = Host(
        name="q", memory_mib=64, maxmem_mib=128,
        interfaces=(Interface(name="eth0", switch="lan", mac="52:54:00:10:00:02"),),
    )
    disk = real.create_run_copy(project, "q", base, None)
    name = real.define_domain(DomainSpec(
        project=project, host=host, virt_type=real.resolve_virt_type("auto"),
        boot=BootSpec.from_template(base), disk_path=disk, seed_path=None,
        nics=(NicSpec("52:54:00:10:00:02", network=network, name="eth0"),),
        model_hash=host.model_hash(),
    ))
    real.start(name)
    (row,) = real.domain_stats(project)
    assert row.state is DomainState.RUNNING and row.uptime_s is not None
    assert row.vcpus == 1 and row.memory_mib is not None
    real.pause(name)
    assert real.domain_stats(project)[0].state is DomainState.PAUSED
    real.resume(name)
    real.set_memory(name, 100, live=True, config=False)
    extra = NicSpec("52:54:00:10:00:03", network=network, name="eth1")
    real.attach_interface(name, extra)
    assert "52:54:00:10:00:03" in real.describe(name)
    real.detach_interface(name, extra.mac, live=False, config=True)
    assert Path(real.runs_dir, project, "q-console.log").exists()
    assert isinstance(real.console_output(name), str)
    # The firmware ignores ACPI power-off, so shutdown falls back to destroy.
    assert real.shutdown(name, timeout_s=1) is ShutdownOutcome.FORCED
    assert real.domain_stats(project)[0].state is DomainState.SHUTOFF
    real.undefine(name)
    assert real.observe(project).domains == ()


def test_received_volumes_round_trip_and_a_standalone_run_copy_is_kept(
        real, project, base, scratch: Path) -> None:
    """What import writes through upload streams reads back the same through download
    streams; a run copy with no backing file (a flattened import) is kept by
    create_run_copy, an overlay on another file is still refused."""
    flat = scratch / "flat.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(flat), "16M"], check=True)
    data = flat.read_bytes()
    path = real.receive_volume(project, "web", StoragePlace(), len(data), iter([data]))
    read: list[bytes] = []
    assert real.read_volume(path, read.append) == len(data)
    assert b"".join(read) == data
    assert real.create_run_copy(project, "web", base, size_mib=None) == path  # kept as it is
    with pytest.raises(ConflictError, match=r"has a volume web\.qcow2 already"):
        real.receive_volume(project, "web", StoragePlace(), len(data), iter([data]))
    disk = real.receive_volume(project, "web", StoragePlace(), len(data), iter([data]),
                               disk="logs")
    assert disk.endswith("web.logs.qcow2")
    assert {(v.kind, v.disk) for v in real.observe(project).volumes} == {
        ("disk", None), ("data", "logs")}
    other = scratch / "other.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base.disk), "-F",
                    "qcow2", str(other)], check=True)
    overlay = other.read_bytes()
    real.receive_volume(project, "db", StoragePlace(), len(overlay), iter([overlay]))
    assert real.create_run_copy(project, "db", base, size_mib=None)  # based on the template
    elsewhere = scratch / "elsewhere.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(flat), "-F",
                    "qcow2", str(elsewhere)], check=True)
    foreign = elsewhere.read_bytes()
    real.receive_volume(project, "app", StoragePlace(), len(foreign), iter([foreign]))
    with pytest.raises(ConflictError, match="is based on"):
        real.create_run_copy(project, "app", base, size_mib=None)
    real.delete_volumes(project, "app")
    real.delete_volumes(project, "web")
    real.delete_volumes(project, "db")

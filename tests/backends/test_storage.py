"""Run copies and pools through the storage API, on the test driver."""

from __future__ import annotations

import subprocess

import pytest
from scenarios import direct_template, disk_template

from corral.backends.libvirt.backend import LibvirtBackend
from corral.errors import ConfigError, ConflictError
from corral.images.registry import Template


def test_run_copy_is_found_again_and_observed(backend) -> None:
    path = backend.create_run_copy("lab", "web", disk_template(), size_mib=4096)
    assert path == "/var/lib/corral/runs/lab/web.qcow2"
    assert backend.create_run_copy("lab", "web", disk_template(), size_mib=4096) == path
    (volume,) = backend.observe("lab").volumes
    assert (volume.pool, volume.project, volume.host, volume.kind) == (
        "corral-lab", "lab", "web", "disk"
    )
    assert volume.backing == str(disk_template().disk)
    pool = backend.conn.storagePoolLookupByName("corral-lab")
    assert pool.autostart()
    assert pool.storageVolLookupByName("web.qcow2").info()[1] == 4096 * 1024**2


def test_capacity_is_at_least_the_template_size(backend) -> None:
    backend.create_run_copy("lab", "web", disk_template(), size_mib=16)
    pool = backend.conn.storagePoolLookupByName("corral-lab")
    assert pool.storageVolLookupByName("web.qcow2").info()[1] == 2 * 1024**3


def test_run_copy_on_another_template_is_refused(backend) -> None:
    backend.create_run_copy("lab", "web", disk_template(), None)
    based = r"run copy of lab.web is based on /var/lib/corral/templates/deb/disk.qcow2, not on"
    with pytest.raises(ConflictError, match=based) as caught:
        backend.create_run_copy("lab", "web", direct_template(), None)
    assert "--recreate" in (caught.value.hint or "")


def test_template_without_disk_is_a_config_error(backend) -> None:
    kernel_only = Template(
        name="k", kind="direct", directory="/t", kernel="/t/vmlinuz", sha256={},
        added_at=direct_template().added_at,
    )
    with pytest.raises(ConfigError, match="template 'k' has no disk image"):
        backend.create_run_copy("lab", "web", kernel_only, None)


def test_delete_volumes_and_remove_pool_touch_only_their_project(backend) -> None:
    backend.create_run_copy("lab", "web", disk_template(), None)
    backend.create_run_copy("lab", "db", disk_template(), None)
    backend.create_run_copy("other", "web", disk_template(), None)
    backend.delete_volumes("lab", "web")
    backend.delete_volumes("lab", "web")  # already gone
    assert [v.host for v in backend.observe("lab").volumes] == ["db"]
    backend.remove_pool("lab")
    backend.remove_pool("lab")  # already gone
    assert backend.observe("lab").volumes == ()
    assert [v.project for v in backend.observe().volumes] == ["other"]


def test_observe_starts_no_pool(tmp_path) -> None:
    """Observing reads only: an inactive pool stays inactive, every pool keeps its
    state, and a local inactive pool's volumes are read from its directory."""
    backend = LibvirtBackend("local", "test:///default", runs_dir=str(tmp_path))
    try:
        backend.create_run_copy("lab", "web", disk_template(), None)
        backend.create_run_copy("other", "web", disk_template(), None)
        backend.conn.storagePoolLookupByName("corral-lab").destroy()
        # What libvirt would find in the inactive pool's directory (the test
        # driver keeps its volumes in memory only).
        (tmp_path / "lab").mkdir()
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-u",
             "-b", "/t/deb/disk.qcow2", str(tmp_path / "lab" / "db.qcow2"), "1M"],
            check=True,
        )
        (tmp_path / "lab" / "db-seed.iso").write_bytes(b"seed")
        (tmp_path / "lab" / "notes.txt").write_text("not a volume")

        def states() -> dict[str, bool]:
            return {p.name(): bool(p.isActive()) for p in backend.conn.listAllStoragePools(0)}

        before = states()
        assert before["corral-lab"] is False and before["corral-other"] is True
        observed = backend.observe()
        assert states() == before
        assert [(v.project, v.host, v.kind, v.backing) for v in observed.volumes] == [
            ("lab", "db", "seed", None),
            ("lab", "db", "disk", "/t/deb/disk.qcow2"),
            ("other", "web", "disk", str(disk_template().disk)),
        ]
    finally:
        backend.close()

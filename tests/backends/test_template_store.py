"""The template store on the real local libvirtd: upload, checksum, reuse, races.

The store works through libvirt's storage API alone, so a pool on this
machine's daemon exercises exactly what a remote service host does (upload
and download streams); each test uses a pool of its own name and directory.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libvirt
import pytest

from corral.backends.libvirt import templatestore
from corral.backends.libvirt.templatestore import TemplateFile, TemplateStore
from corral.errors import BackendError

REAL_URI = "qemu:///system"

pytestmark = pytest.mark.libvirt


@pytest.fixture
def conn() -> Iterator[libvirt.virConnect]:
    try:
        connection = libvirt.open(REAL_URI)
    except libvirt.libvirtError as error:
        pytest.skip(f"libvirtd does not answer at {REAL_URI}: {error}")
    yield connection
    connection.close()


@pytest.fixture
def store(conn: libvirt.virConnect, project: str, scratch: Path) -> Iterator[TemplateStore]:
    made = TemplateStore("far", str(scratch / "copies"), stall_s=1.0, pool=f"corral.t-{project}")
    yield made
    pool = conn.storagePoolLookupByName(made.pool) if made.pool in conn.listStoragePools() \
        else None
    if pool is not None:
        pool.refresh(0)
        for volume in pool.listAllVolumes(0):
            volume.delete(0)
        pool.destroy()
        pool.undefine()


@pytest.fixture
def disk(scratch: Path) -> TemplateFile:
    path = scratch / "disk.qcow2"
    data = os.urandom(3 * 1024 * 1024 + 17)  # several stream chunks and a short tail
    path.write_bytes(data)
    return TemplateFile("tpl", path, hashlib.sha256(data).hexdigest())


def _volume(conn: libvirt.virConnect, path: str) -> libvirt.virStorageVol:
    return conn.storageVolLookupByPath(path)


def test_names_carry_template_digest_and_file() -> None:
    name = templatestore.volume_name("tiny.v2", "disk.qcow2", "a771e5f91e2402775f07" + "0" * 44)
    assert name == "tiny.v2.a771e5f91e240277.disk.qcow2"
    assert templatestore.parse_volume_name(name) == ("tiny.v2", "a771e5f91e240277", "disk.qcow2")
    assert templatestore.parse_volume_name("web.qcow2") is None


def test_first_use_uploads_and_verifies_later_uses_reuse(
    conn: libvirt.virConnect, store: TemplateStore, disk: TemplateFile
) -> None:
    path = templatestore.ensure_copy(conn, store, disk)
    assert store.uploads == 1
    assert Path(path).name == disk.volume
    volume = _volume(conn, path)
    assert templatestore.download_sha256(conn, volume) == disk.sha256
    mtime = os.stat(path).st_mtime_ns
    # A second process (a store of its own) finds the copy by name and size.
    again = TemplateStore(store.service_host, store.directory, pool=store.pool)
    assert templatestore.ensure_copy(conn, again, disk) == path
    assert again.uploads == 0
    assert os.stat(path).st_mtime_ns == mtime
    listed = templatestore.copies(conn, again)
    assert [(c.template, c.file, c.digest, c.size) for c in listed] == [
        ("tpl", "disk.qcow2", disk.sha256[:16], disk.source.stat().st_size)]


def test_a_corrupted_copy_is_found_by_its_checksum_and_uploaded_again(
    conn: libvirt.virConnect, store: TemplateStore, disk: TemplateFile
) -> None:
    path = templatestore.ensure_copy(conn, store, disk)
    volume = _volume(conn, path)
    templatestore.stream_into(conn, volume, 4, iter([b"evil"]))  # same size, other bytes
    problem = templatestore.verify_copy(conn, store, disk)
    assert problem is not None
    assert "service host far" in problem and "template tpl" in problem
    assert templatestore.verify_copy(conn, store, disk) is None  # deleted: nothing to check
    fresh = TemplateStore(store.service_host, store.directory, pool=store.pool)
    assert templatestore.ensure_copy(conn, fresh, disk) == path
    assert fresh.uploads == 1
    assert templatestore.download_sha256(conn, _volume(conn, path)) == disk.sha256


def test_a_copy_cut_short_is_replaced(
    conn: libvirt.virConnect, store: TemplateStore, disk: TemplateFile
) -> None:
    from corral.backends.libvirt import pools

    pool = pools.ensure(conn, store.spec)
    short = pool.createXML(templatestore.empty_volume_xml(disk.volume), 0)
    templatestore.stream_into(conn, short, 1000, iter([disk.source.read_bytes()[:1000]]))
    path = templatestore.ensure_copy(conn, store, disk)  # waits stall_s, then uploads
    assert store.uploads == 1
    assert templatestore.download_sha256(conn, _volume(conn, path)) == disk.sha256


def test_concurrent_uploads_of_one_copy_do_not_corrupt_it(
    conn: libvirt.virConnect, store: TemplateStore, disk: TemplateFile
) -> None:
    """Two stores with connections of their own, as two Corral processes."""
    stores = [TemplateStore("far", store.directory, pool=store.pool) for _ in range(3)]
    conns = [libvirt.open(REAL_URI) for _ in stores]
    paths: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def use(index: int) -> None:
        barrier.wait()
        try:
            paths.append(templatestore.ensure_copy(conns[index], stores[index], disk))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=use, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for c in conns:
        c.close()
    assert not errors, errors
    assert len(set(paths)) == 1 and len(paths) == len(stores)
    assert sum(s.uploads for s in stores) == 1
    assert templatestore.download_sha256(conn, _volume(conn, paths[0])) == disk.sha256


def test_a_registry_file_changed_on_disk_is_refused(
    conn: libvirt.virConnect, store: TemplateStore, disk: TemplateFile
) -> None:
    lying = TemplateFile("tpl", disk.source, "0" * 64)
    with pytest.raises(BackendError, match="template tpl changed on disk"):
        templatestore.ensure_copy(conn, store, lying)
    assert templatestore.copies(conn, store) == []  # nothing half made is left


@pytest.mark.parametrize("remote", [False, True], ids=["written-here", "cloned-there"])
def test_two_service_hosts_sharing_a_directory_never_create_one_file(
    conn: libvirt.virConnect, store: TemplateStore, disk: TemplateFile, project: str,
    scratch: Path, remote: bool,
) -> None:
    """Two pools on one directory (the second through a symlink, as libvirt allows one
    pool per path) stand for two service hosts sharing storage. Each stages its own
    copy under its own name, at the same moment too: a daemon that loses a race
    to create a file deletes the path as its failed volume, so two daemons must
    never create the same one."""
    from corral.backends.libvirt import pools, storage

    shared = scratch / "shared"
    shared.mkdir()
    (scratch / "other").symlink_to(shared)
    specs = [pools.dir_pool(f"corral-{project}", str(shared)),
             pools.dir_pool(f"corral-{project}.dir-0", str(scratch / "other"))]
    made = [pools.ensure(conn, spec) for spec in specs]  # both active, both listing nothing
    host_copy = templatestore.ensure_copy(conn, store, disk) if remote else None
    try:
        with ThreadPoolExecutor(2) as both:
            paths = list(both.map(
                lambda job: storage.stage_boot_file(
                    conn, job[0], disk, "vmlinuz", storage.BootCopies(service_host=job[1]),
                    host_copy),
                zip(made, ("h1", "h2"), strict=True),
            ))
        assert [Path(p).name for p in paths] == [
            storage.boot_volume_name(disk.sha256, "vmlinuz", name) for name in ("h1", "h2")
        ]
        for path in paths:
            assert Path(path).read_bytes() == disk.source.read_bytes()
        assert sorted(p.name for p in shared.iterdir()) == sorted(Path(p).name for p in paths)
        again = storage.stage_boot_file(conn, made[1], disk, "vmlinuz",
                                        storage.BootCopies(service_host="h1"), host_copy)
        assert Path(again).resolve() == Path(paths[0]).resolve()  # found, not made again
    finally:
        for pool in made:
            pool.destroy()
            pool.undefine()


def test_a_copy_its_writer_deleted_is_made_anew(
    conn: libvirt.virConnect, store: TemplateStore, disk: TemplateFile
) -> None:
    """A waiting process whose uploader found the copy wrong (and deleted it) uploads
    it itself instead of failing on the vanished volume."""
    from corral.backends.libvirt import pools

    pool = pools.ensure(conn, store.spec)
    gone = pool.createXML(templatestore.empty_volume_xml(disk.volume), 0)
    gone.delete(0)
    assert templatestore.await_size(gone, 10, stall_s=5.0) is False
    path = templatestore.ensure_copy(conn, store, disk)
    assert templatestore.download_sha256(conn, _volume(conn, path)) == disk.sha256


def test_removing_a_pool_whose_shared_directory_another_host_removed(real, project: str,
                                                                   scratch: Path) -> None:
    """The second service host to remove a project on a shared directory finds the
    directory gone (the first removed it): the pool goes all the same."""
    import shutil

    from corral.backends.libvirt import storage

    pool = storage.ensure_pool(real.conn, project, real.runs_dir)
    pool.createXML(storage.raw_volume_xml("web-seed.iso", 4096), 0)
    shutil.rmtree(scratch / "runs" / project)
    real.remove_pool(project)
    assert storage.find_pool(real.conn, project) is None

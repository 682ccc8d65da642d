"""Run copies and seed ISOs, through libvirt's storage API only.

Each project has a directory pool ``corral-PROJECT`` at ``RUNS/PROJECT``. A
host's run copy is a qcow2 volume whose ``<backingStore>`` is its template:
libvirt runs ``qemu-img create -b`` for us, so nothing is ever copied and the
template is only opened for reading. Seeds are raw volumes written through a
stream (``virStorageVolUpload``), which works the same on a remote service
host as on this one. Because every volume is found by pool and name, what
belongs to which project and host is never in doubt.

On a remote service host the template is the service host's own copy in its
template store (:mod:`.templatestore`), uploaded on first use; the backend
passes its path as the run copy's ``base``.

Templates are never relabelled: the domain XML names a run copy's backing
file with DAC relabelling off (:func:`backing_chain` tells which file that
is), and a direct-boot template's kernel and initrd, which libvirt 9.0's DAC
driver chowns with no per-file opt-out, are booted from copies in the pool of
the host's run copy (:func:`stage_boot_file`): ``boot-DIGEST-SERVICEHOST-vmlinuz``
and ``boot-DIGEST-SERVICEHOST-initrd.img``, named by content so every host of
the project on that service host booting the same kernel shares one copy (a
few MB; disks are never copied). They are deleted with the project's last
host or with the pool.

The service host's name is part of the name because two service hosts may
share the directory (``filepath`` on shared storage), and two libvirt daemons
must never create one file: each checks the path is free, and the one that
loses the race between that check and its exclusive create gets "File exists"
and then deletes the target path as its own failed volume, which is the
winner's fresh copy. One daemon serialises its own creates, so per service
host one name is safe.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import libvirt
from lxml import etree

from corral.backends.base import DiskSpec, StoragePlace, TemplateLike
from corral.backends.libvirt import names, pools, templatestore
from corral.backends.libvirt.connection import error_code, libvirt_errors
from corral.backends.libvirt.pools import find_volume
from corral.errors import BackendError, ConfigError, ConflictError, NotFoundError
from corral.images import qemuimg

MIB = 1024 * 1024
_CHUNK = 256 * 1024
BOOT_PREFIX = "boot-"
BOOT_ROLES = ("vmlinuz", "initrd.img")  # the kernel's and the initrd's copies
_BOOT_DIGEST = 16  # hex digits of the sha256 in a copy's name
_ROUNDS = 5  # create-or-find attempts before a name that stays taken is an error


@dataclass
class BootCopies:
    """One backend's record of the boot copies it wrote or compared byte for byte.

    ``service_host`` (the backend's name) is part of each copy's volume name.

    Keyed by (project, pool, volume): a copy staged once needs no second look
    from the same backend, so the hosts of a project after the first do not
    read the template's kernel and initrd again. The lock serialises the
    backend's threads (hosts of one project are defined in parallel).
    ``stall_s`` is how long a copy another writer leaves short of its size may
    stay so before it counts as abandoned (see :mod:`.templatestore`).
    """

    service_host: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    staged: dict[tuple[str, str, str], str] = field(default_factory=dict)
    stall_s: float = 30.0

    def forget(self, project: str) -> None:
        """Volumes of ``project`` are being deleted: look at its copies afresh next time."""
        with self.lock:
            for key in [k for k in self.staged if k[0] == project]:
                del self.staged[key]


def pool_xml(project: str, runs_dir: str) -> str:
    """The XML of the project's own directory pool."""
    return pools.project_pool(project, runs_dir).xml


def overlay_xml(name: str, capacity: int, backing: str, backing_format: str) -> str:
    """A qcow2 volume whose backing store is the template (read only, never copied)."""
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "capacity", unit="bytes").text = str(capacity)
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "format", type="qcow2")
    store = etree.SubElement(root, "backingStore")
    etree.SubElement(store, "path").text = backing
    etree.SubElement(store, "format", type=backing_format)
    return etree.tostring(root, encoding="unicode")


def qcow2_volume_xml(name: str, capacity: int) -> str:
    """An empty qcow2 volume (an extra disk): it grows as the guest writes."""
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "capacity", unit="bytes").text = str(capacity)
    etree.SubElement(root, "allocation", unit="bytes").text = "0"
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "format", type="qcow2")
    return etree.tostring(root, encoding="unicode")


def raw_volume_xml(name: str, capacity: int) -> str:
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "capacity", unit="bytes").text = str(capacity)
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "format", type="raw")
    return etree.tostring(root, encoding="unicode")


def find_pool(conn: libvirt.virConnect, project: str) -> libvirt.virStoragePool | None:
    return pools.find(conn, names.pool_name(project))


def ensure_pool(conn: libvirt.virConnect, project: str, runs_dir: str) -> libvirt.virStoragePool:
    """The project's own pool, defined, built and active."""
    return pools.ensure(conn, pools.project_pool(project, runs_dir))


def start_pool(pool: libvirt.virStoragePool) -> None:
    pools.start(pool, build=True)


def project_pools(conn: libvirt.virConnect, project: str) -> list[libvirt.virStoragePool]:
    """Every directory pool of the project: its own and one per ``filepath`` directory."""
    return [
        pool
        for pool in conn.listAllStoragePools(0)
        if names.project_of_pool(pool.name()) == project
    ]


def lvm_pools(conn: libvirt.virConnect) -> list[libvirt.virStoragePool]:
    return [
        pool
        for pool in conn.listAllStoragePools(0)
        if names.volume_group_of_pool(pool.name()) is not None
    ]


def backing_of(volume: libvirt.virStorageVol) -> str | None:
    """The backing file a volume's XML names, if any."""
    root = etree.fromstring(volume.XMLDesc(0).encode())
    path = root.findtext("backingStore/path")
    return path or None


def create_run_copy(
    conn: libvirt.virConnect,
    runs_dir: str,
    project: str,
    host_name: str,
    template: TemplateLike,
    size_mib: int | None,
    place: StoragePlace = StoragePlace(),
    base: str | None = None,
) -> str:
    """See :meth:`corral.backends.base.Backend.create_run_copy`.

    ``base`` is the template disk's path on the service host: the registry's
    file on this machine (the default), the service host's uploaded copy on a
    remote one (:mod:`.templatestore`).
    """
    if place.volume_group:
        if not template.disk:
            raise ConfigError(
                f"template '{template.name}' has no disk image to base a run copy on")
        return _logical_run_copy(conn, project, host_name, template, size_mib, place.volume_group)
    spec = pools.pool_for(project, runs_dir, place)
    pool = pools.ensure(conn, spec)
    name = names.disk_volume(host_name)
    with libvirt_errors(f"create run copy {name} in pool {spec.name}"):
        volume = find_volume(pool, name)
        if volume is not None and backing_of(volume) is None:
            # A standalone run copy: the flattened disk of an imported archive
            # (``corral import``), which needs no template file. Kept as it is.
            return str(volume.path())
        if not template.disk:
            raise ConfigError(
                f"template '{template.name}' has no disk image to base a run copy on")
        base = base or str(template.disk)
        if volume is not None:
            backing = backing_of(volume)
            if backing != base:
                raise ConflictError(
                    f"run copy of {project}.{host_name} is based on {backing}, not on "
                    f"template '{template.name}' ({base})",
                    hint="a template change needs the host recreated (--recreate)",
                )
            return str(volume.path())
        capacity = max((size_mib or 0) * MIB, int(template.virtual_size or 0))
        backing_format = template.format or "raw"
        volume = pool.createXML(overlay_xml(name, capacity, base, backing_format), 0)
        return str(volume.path())


def _logical_run_copy(
    conn: libvirt.virConnect,
    project: str,
    host_name: str,
    template: TemplateLike,
    size_mib: int | None,
    volume_group: str,
) -> str:
    """A logical volume holding a raw copy of the template (LVM cannot overlay a file).

    The template's bytes reach the volume through a libvirt upload stream, so
    this works on a remote service host too; the template is only read.
    """
    pool = pools.ensure(conn, pools.logical_pool(volume_group))
    name = names.logical_volume(project, host_name)
    with libvirt_errors(f"create run copy {name} on volume group {volume_group}"):
        volume = find_volume(pool, name)
        if volume is not None:
            return str(volume.path())
        capacity = max((size_mib or 0) * MIB, int(template.virtual_size or 0))
        volume = pool.createXML(raw_volume_xml(name, capacity), 0)
        with tempfile.TemporaryDirectory(prefix="corral-lv-") as scratch:
            raw = Path(scratch) / "root.raw"
            qemuimg.convert(Path(str(template.disk)), raw, "raw", src_format=template.format)
            _upload_file(conn, volume, raw)
        return str(volume.path())


def create_data_disk(
    conn: libvirt.virConnect,
    runs_dir: str,
    project: str,
    host_name: str,
    disk: str,
    size_mib: int,
    place: StoragePlace,
    *,
    raw: bool = False,
) -> DiskSpec:
    """See :meth:`corral.backends.base.Backend.create_data_disk`."""
    spec = pools.pool_for(project, runs_dir, place)
    pool = pools.ensure(conn, spec)
    logical = place.volume_group is not None
    raw = raw or logical
    name = (
        names.logical_volume(project, host_name, disk) if logical
        else names.data_volume(host_name, disk, raw=raw)
    )
    with libvirt_errors(f"create disk {name} in pool {spec.name}"):
        volume = find_volume(pool, name)
        if volume is None:
            xml = raw_volume_xml(name, size_mib * MIB) if raw else qcow2_volume_xml(
                name, size_mib * MIB
            )
            volume = pool.createXML(xml, 0)
        elif volume.info()[1] < size_mib * MIB:
            # grown in the file; a running domain's disk was grown through QEMU already
            volume.resize(size_mib * MIB, 0)
        return DiskSpec(
            serial=disk, path=str(volume.path()), format="raw" if raw else "qcow2",
            block=logical,
        )


def delete_data_disk(conn: libvirt.virConnect, project: str, host_name: str, disk: str) -> None:
    """See :meth:`corral.backends.base.Backend.delete_data_disk`."""
    with libvirt_errors(f"delete disk {disk} of {project}.{host_name}"):
        for pool in project_pools(conn, project):
            _delete_if_found(pool, names.data_volume(host_name, disk))
            _delete_if_found(pool, names.data_volume(host_name, disk, raw=True))
        for pool in lvm_pools(conn):
            _delete_if_found(pool, names.logical_volume(project, host_name, disk))


def _delete_if_found(pool: libvirt.virStoragePool, name: str) -> None:
    if not pool.isActive():
        pools.start(pool, build=False)
    volume = find_volume(pool, name)
    if volume is not None:
        volume.delete(0)


def backing_chain(conn: libvirt.virConnect, path: str) -> list[tuple[str, str]] | None:
    """``(path, format)`` of the files under the volume at ``path``, top first, as
    libvirt's storage driver reports them; None when no volume has that path.

    A volume's XML names one level; that is the whole chain for Corral's run
    copies, because the registry refuses templates that have a backing file.
    """
    try:
        volume = conn.storageVolLookupByPath(path)
    except libvirt.libvirtError as exc:
        if error_code(exc) in (libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_NO_STORAGE_POOL):
            return None
        raise
    root = etree.fromstring(volume.XMLDesc(0).encode())
    backing = root.findtext("backingStore/path")
    if not backing:
        return []
    fmt = root.find("backingStore/format")
    return [(backing, fmt.get("type", "raw") if fmt is not None else "raw")]


def boot_volume_name(digest: str, role: str, service_host: str = "") -> str:
    """The pool volume holding ``service_host``'s copy of a boot file with this sha256."""
    owner = f"{service_host}-" if service_host else ""
    return f"{BOOT_PREFIX}{digest[:_BOOT_DIGEST]}-{owner}{role}"


def boot_copy_for(name: str, service_host: str) -> str:
    """The name of ``service_host``'s copy of the boot file whose copy (on another
    service host) is the volume ``name``; any other volume name as it is. A
    moved guest boots from the target's own copy."""
    digest = name[len(BOOT_PREFIX):len(BOOT_PREFIX) + _BOOT_DIGEST]
    if not name.startswith(BOOT_PREFIX) or len(digest) != _BOOT_DIGEST:
        return name
    for role in BOOT_ROLES:
        if name.endswith(f"-{role}"):
            return boot_volume_name(digest, role, service_host)
    return name


def boot_pool(
    conn: libvirt.virConnect, project: str, runs_dir: str, disk_path: str
) -> libvirt.virStoragePool:
    """The pool a host's boot copies go to: the directory pool of its run copy.

    Beside the disks, a host on shared storage (``filepath``) finds its boot
    copies at the same path on every service host that sees the directory; a
    run copy on a logical volume has the project's own pool instead.
    """
    with libvirt_errors(f"find the pool of {disk_path}"):
        try:
            pool = conn.storageVolLookupByPath(disk_path).storagePoolLookupByVolume()
        except libvirt.libvirtError as exc:
            if error_code(exc) not in (libvirt.VIR_ERR_NO_STORAGE_VOL,
                                       libvirt.VIR_ERR_NO_STORAGE_POOL):
                raise
            pool = None
    if pool is not None and names.project_of_pool(pool.name()) == project:
        return pool
    return ensure_pool(conn, project, runs_dir)


def stage_boot_file(
    conn: libvirt.virConnect,
    pool: libvirt.virStoragePool,
    file: templatestore.TemplateFile,
    role: str,
    copies: BootCopies,
    host_copy: str | None = None,
) -> str:
    """The path of a copy of ``file`` (a template's kernel or initrd) in ``pool``,
    made if missing; ``role`` ends the volume's name.

    On this machine the copy is written from the registry's file; on a remote
    service host (``host_copy``, its verified copy of the file in the template
    store) libvirt clones that copy into the pool, so the file crosses the
    network once per service host, not once per project.
    """
    name = boot_volume_name(file.sha256, role, copies.service_host)
    key = (names.project_of_pool(pool.name()) or "", pool.name(), name)
    with copies.lock:
        if key not in copies.staged:
            with libvirt_errors(f"copy {file.source} to pool {pool.name()}"):
                copies.staged[key] = (
                    _stage_here(pool, file, name) if host_copy is None
                    else _stage_there(conn, pool, file, name, host_copy, copies.stall_s)
                )
        return copies.staged[key]


def _stage_here(pool: libvirt.virStoragePool, file: templatestore.TemplateFile, name: str) -> str:
    try:
        data = file.source.read_bytes()
    except OSError as exc:
        raise NotFoundError(f"cannot read boot file {file.source}: {exc.strerror}") from exc
    for _ in range(_ROUNDS):
        # The file may be on disk but unknown to the pool (made before the pool
        # was last started, or by another Corral process through a pool object
        # that was redefined): libvirt then refuses the create, "volume target
        # path ... already exists".
        templatestore.refresh(pool)
        volume = find_volume(pool, name)
        if volume is None:
            try:
                volume = pool.createXML(raw_volume_xml(name, len(data)), 0)
            except libvirt.libvirtError:
                continue  # another writer made it meanwhile: look again
        path = Path(volume.path())
        if _read_file(path) != data:
            _write_local(path, data)  # new, or cut short: the name says what it must hold
        return str(path)
    raise BackendError(f"cannot make the boot copy {name} in pool {pool.name()}: "
                       "its name stays taken by something libvirt does not list")


def _stage_there(
    conn: libvirt.virConnect,
    pool: libvirt.virStoragePool,
    file: templatestore.TemplateFile,
    name: str,
    host_copy: str,
    stall_s: float,
) -> str:
    source = conn.storageVolLookupByPath(host_copy)
    size = templatestore.physical_size(source)
    for _ in range(_ROUNDS):
        templatestore.refresh(pool)
        volume = find_volume(pool, name)
        if volume is None:
            try:
                volume = pool.createXMLFrom(raw_volume_xml(name, size), source, 0)
            except libvirt.libvirtError as exc:
                if error_code(exc) == libvirt.VIR_ERR_STORAGE_VOL_EXIST or \
                        templatestore.exists_error(exc):
                    continue  # made meanwhile by another Corral process: look again
                raise
            return str(volume.path())
        # Cloned on the host from its verified template copy, a copy can only be
        # short (a clone cut off): its size is the check, as for template copies.
        if templatestore.await_size(volume, size, stall_s):
            return str(volume.path())
        with contextlib.suppress(libvirt.libvirtError):  # gone meanwhile is fine
            volume.delete(0)
    raise BackendError(f"cannot make the boot copy {name} in pool {pool.name()}: "
                       "its name stays taken by a copy that does not match")


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def upload_seed(
    conn: libvirt.virConnect,
    runs_dir: str,
    project: str,
    host_name: str,
    iso: bytes,
    place: StoragePlace = StoragePlace(),
) -> str:
    """See :meth:`corral.backends.base.Backend.upload_seed`."""
    spec = pools.pool_for(project, runs_dir, StoragePlace(directory=place.directory))
    pool = pools.ensure(conn, spec)
    name = names.seed_volume(host_name)
    with libvirt_errors(f"upload seed {name} to pool {spec.name}"):
        volume = find_volume(pool, name)
        if volume is None:  # on shared storage another service host may have made it
            templatestore.refresh(pool)
            volume = find_volume(pool, name)
        local = is_local(conn)
        if volume is not None:
            if volume.info()[1] == len(iso) and _read(conn, volume, local) == iso:
                return str(volume.path())
            if volume.info()[1] != len(iso):
                volume.delete(0)
                volume = None
        if volume is None:
            volume = pool.createXML(raw_volume_xml(name, len(iso)), 0)
        if local:
            _write_local(Path(volume.path()), iso)
        else:
            upload(conn, volume, iso)
        return str(volume.path())


def is_local(conn: libvirt.virConnect) -> bool:
    """True when the connection's URI names no remote host (``qemu:///system``).

    Then the pool's directory is on this machine and a seed is written in
    place, which is much cheaper than a stream (and works on drivers such as
    ``test:///`` that cannot upload); remote service hosts get a stream.
    """
    return urlsplit(conn.getURI()).hostname in (None, "", "localhost")


def _read(conn: libvirt.virConnect, volume: libvirt.virStorageVol, local: bool) -> bytes | None:
    if local:
        try:
            return Path(volume.path()).read_bytes()
        except OSError:
            return None
    return download(conn, volume)


def _write_local(path: Path, data: bytes) -> None:
    """Replace the file atomically, readable by the hypervisor's user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.chmod(0o644)
    os.replace(temporary, path)


def upload(conn: libvirt.virConnect, volume: libvirt.virStorageVol, data: bytes) -> None:
    """Stream ``data`` into ``volume`` (small files: seeds, console logs)."""
    view = memoryview(data)
    chunks = (view[o : o + _CHUNK].tobytes() for o in range(0, len(data), _CHUNK))
    templatestore.stream_into(conn, volume, len(data), chunks)


def _upload_file(conn: libvirt.virConnect, volume: libvirt.virStorageVol, path: Path) -> None:
    """Stream a (large) file into a volume in chunks, never holding it in memory."""
    with path.open("rb") as source:
        chunks = iter(lambda: source.read(4 * MIB), b"")
        templatestore.stream_into(conn, volume, path.stat().st_size, chunks)


def download(conn: libvirt.virConnect, volume: libvirt.virStorageVol) -> bytes:
    """A volume's bytes, read through a stream (small volumes: seeds)."""
    parts: list[bytes] = []
    templatestore.download_chunks(conn, volume, parts.append)
    return b"".join(parts)


def delete_volumes(conn: libvirt.virConnect, project: str, host_name: str) -> None:
    """See :meth:`corral.backends.base.Backend.delete_volumes`."""
    with libvirt_errors(f"delete volumes of {project}.{host_name}"):
        for pool in project_pools(conn, project):
            pools.start(pool, build=True)
            for volume in pool.listAllVolumes(0):
                parsed = names.parse_volume(volume.name())
                if parsed is not None and parsed[0] == host_name:
                    volume.delete(0)
            _delete_console_log(pool, host_name)
        _drop_unused_boot_copies(project_pools(conn, project))
        for pool in lvm_pools(conn):
            if not pool.isActive():
                continue
            for volume in pool.listAllVolumes(0):
                logical = names.parse_logical_volume(volume.name())
                if logical is not None and logical[:2] == (project, host_name):
                    volume.delete(0)


def _delete_console_log(pool: libvirt.virStoragePool, host_name: str) -> None:
    """The host's console log goes with its disks; the pool learns of a log only
    on refresh (virtlogd wrote it), so a missing one is looked for on disk too."""
    name = names.console_log_volume(host_name)
    volume = find_volume(pool, name)
    if volume is None:
        # A refresh is refused while a volume is being built in the pool; the log
        # then stays until the pool goes, which is harmless.
        with contextlib.suppress(libvirt.libvirtError):
            pool.refresh(0)
            volume = find_volume(pool, name)
    if volume is not None:
        with contextlib.suppress(libvirt.libvirtError):  # gone meanwhile
            volume.delete(0)


def _drop_unused_boot_copies(project_pools: list[libvirt.virStoragePool]) -> None:
    """Delete the project's boot copies once no host's volume is left in any of its pools.

    They are shared by the project's hosts (whichever pool holds their disks),
    so they go with the last host (or with the pool); a pool holding only boot
    copies would otherwise look empty to observe and outlive the project.
    """
    for pool in project_pools:  # a shared directory may hold another service host's disks
        if pool.isActive():
            templatestore.refresh(pool)
    listed = [(pool, pool.listAllVolumes(0)) for pool in project_pools if pool.isActive()]
    if any(names.parse_volume(v.name()) for _, volumes in listed for v in volumes):
        return
    for _, volumes in listed:
        for volume in volumes:
            if volume.name().startswith(BOOT_PREFIX):
                with contextlib.suppress(libvirt.libvirtError):  # gone meanwhile
                    volume.delete(0)


def remove_pool(conn: libvirt.virConnect, project: str) -> None:
    """See :meth:`corral.backends.base.Backend.remove_pool`: every directory pool of
    the project (its own and its ``filepath`` ones), never a shared logical pool."""
    for pool in project_pools(conn, project):
        _remove_directory_pool(pool)


def _remove_directory_pool(pool: libvirt.virStoragePool) -> None:
    with libvirt_errors(f"remove storage pool {pool.name()}"):
        start_pool(pool)
        try:
            pool.refresh(0)
        except libvirt.libvirtError:
            if pool.isActive():
                raise
            # libvirt stops a pool whose directory went away under it: another
            # service host sharing the directory removed it first. Make it
            # again (empty) so that the pool goes the usual way.
            start_pool(pool)
            pool.refresh(0)
        for volume in pool.listAllVolumes(0):
            volume.delete(0)
        pool.destroy()
        try:
            pool.delete(0)
        except libvirt.libvirtError as exc:
            raise BackendError(
                f"pool {pool.name()} emptied but its directory stays: "
                f"{exc.get_error_message()}"
            ) from exc
        finally:
            pool.undefine()

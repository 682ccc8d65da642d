"""Run copies and seed ISOs, through libvirt's storage API only.

Each project has a directory pool ``corral-PROJECT`` at ``RUNS/PROJECT``. A
host's run copy is a qcow2 volume whose ``<backingStore>`` is its template:
libvirt runs ``qemu-img create -b`` for us, so nothing is ever copied and the
template is only opened for reading. Seeds are raw volumes written through a
stream (``virStorageVolUpload``), which works the same on a remote service
host as on this one. Because every volume is found by pool and name, what
belongs to which project and host is never in doubt.

Templates are never relabelled: the domain XML names a run copy's backing
file with DAC relabelling off (:func:`backing_chain` tells which file that
is), and a direct-boot template's kernel and initrd, which libvirt 9.0's DAC
driver chowns with no per-file opt-out, are booted from copies in the
project's pool (:func:`stage_boot_file`): ``boot-DIGEST-vmlinuz`` and
``boot-DIGEST-initrd.img``, named by content so every host of the project
booting the same kernel shares one copy (a few MB; disks are never copied).
They are deleted with the project's last host or with the pool.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import libvirt
from lxml import etree

from corral.backends.base import TemplateLike
from corral.backends.libvirt import names
from corral.backends.libvirt.connection import error_code, libvirt_errors
from corral.errors import BackendError, ConfigError, ConflictError, NotFoundError

MIB = 1024 * 1024
_CHUNK = 256 * 1024
BOOT_PREFIX = "boot-"
_STAGING = threading.Lock()  # hosts of one project are defined from several threads
# Boot copies this process wrote or compared byte for byte: (URI, path). Their
# names are content digests, so they need no second look.
_STAGED: set[tuple[str, str]] = set()


def pool_xml(project: str, runs_dir: str) -> str:
    root = etree.Element("pool", type="dir")
    etree.SubElement(root, "name").text = names.pool_name(project)
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "path").text = str(PurePosixPath(runs_dir) / project)
    permissions = etree.SubElement(target, "permissions")
    etree.SubElement(permissions, "mode").text = "0755"
    return etree.tostring(root, encoding="unicode")


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


def raw_volume_xml(name: str, capacity: int) -> str:
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "capacity", unit="bytes").text = str(capacity)
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "format", type="raw")
    return etree.tostring(root, encoding="unicode")


def find_pool(conn: libvirt.virConnect, project: str) -> libvirt.virStoragePool | None:
    try:
        return conn.storagePoolLookupByName(names.pool_name(project))
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_STORAGE_POOL:
            return None
        raise


def ensure_pool(conn: libvirt.virConnect, project: str, runs_dir: str) -> libvirt.virStoragePool:
    """The project's pool, defined, built and active (autostart on, so its volumes
    are visible again after a daemon restart)."""
    name = names.pool_name(project)
    with libvirt_errors(f"prepare storage pool {name}"):
        # Hosts of one project are built in parallel (threads, or two corral
        # processes), so another caller may define or start the pool between
        # our look-up and our call: losing that race is fine, not an error.
        pool = find_pool(conn, project)
        if pool is None:
            try:
                pool = conn.storagePoolDefineXML(pool_xml(project, runs_dir), 0)
                pool.build(0)
            except libvirt.libvirtError:
                pool = find_pool(conn, project)
                if pool is None:
                    raise
        start_pool(pool)
        if not pool.autostart():
            pool.setAutostart(1)
        return pool


def start_pool(pool: libvirt.virStoragePool) -> None:
    """Make a defined pool active, building its directory first when it is missing.

    The directory can be missing although the pool is defined: another thread
    or process defined the pool and has not built it yet, or a run was killed
    between define and build. Building a directory pool that exists is
    harmless, and a pool someone else started meanwhile is fine.
    """
    if pool.isActive():
        return
    try:
        pool.create(0)
        return
    except libvirt.libvirtError:
        if pool.isActive():
            return
    try:
        pool.build(0)
        pool.create(0)
    except libvirt.libvirtError:
        if not pool.isActive():
            raise


def find_volume(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return None
        raise


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
) -> str:
    """See :meth:`corral.backends.base.Backend.create_run_copy`."""
    if not template.disk:
        raise ConfigError(f"template '{template.name}' has no disk image to base a run copy on")
    base = str(template.disk)
    pool = ensure_pool(conn, project, runs_dir)
    name = names.disk_volume(host_name)
    with libvirt_errors(f"create run copy {name} in pool {names.pool_name(project)}"):
        volume = find_volume(pool, name)
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


def boot_volume_name(data: bytes, role: str) -> str:
    """The pool volume holding a copy of a boot file with these bytes."""
    return f"{BOOT_PREFIX}{hashlib.sha256(data).hexdigest()[:16]}-{role}"


def stage_boot_file(
    conn: libvirt.virConnect, runs_dir: str, project: str, source: str, role: str
) -> str:
    """The path of a copy of ``source`` (a template's kernel or initrd) in the
    project's pool, made if missing; ``role`` ends the volume's name."""
    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        raise NotFoundError(f"cannot read boot file {source}: {exc.strerror}") from exc
    name = boot_volume_name(data, role)
    pool = ensure_pool(conn, project, runs_dir)
    local = is_local(conn)
    with _STAGING, libvirt_errors(f"copy {source} to pool {names.pool_name(project)}"):
        volume = find_volume(pool, name)
        if volume is not None:
            key = (conn.getURI(), str(volume.path()))
            if key in _STAGED or _read(conn, volume, local) == data:
                _STAGED.add(key)
                return str(volume.path())
            volume.delete(0)  # a copy cut short: the name says what it must hold
        try:
            volume = pool.createXML(raw_volume_xml(name, len(data)), 0)
        except libvirt.libvirtError:
            raced = find_volume(pool, name)  # another corral process is writing it
            if raced is None:
                raise
            return str(raced.path())
        if local:
            _write_local(Path(volume.path()), data)
        else:
            _upload(conn, volume, data)
        _STAGED.add((conn.getURI(), str(volume.path())))
        return str(volume.path())


def upload_seed(
    conn: libvirt.virConnect, runs_dir: str, project: str, host_name: str, iso: bytes
) -> str:
    """See :meth:`corral.backends.base.Backend.upload_seed`."""
    pool = ensure_pool(conn, project, runs_dir)
    name = names.seed_volume(host_name)
    with libvirt_errors(f"upload seed {name} to pool {names.pool_name(project)}"):
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
            _upload(conn, volume, iso)
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


def _upload(conn: libvirt.virConnect, volume: libvirt.virStorageVol, data: bytes) -> None:
    stream = conn.newStream(0)
    try:
        volume.upload(stream, 0, len(data), 0)
        view = memoryview(data)
        for offset in range(0, len(data), _CHUNK):
            chunk = view[offset : offset + _CHUNK].tobytes()
            sent = 0
            while sent < len(chunk):
                sent += stream.send(chunk[sent:])
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise


def download(conn: libvirt.virConnect, volume: libvirt.virStorageVol) -> bytes:
    """A volume's bytes, read through a stream (small volumes: seeds)."""
    size = volume.info()[1]
    stream = conn.newStream(0)
    volume.download(stream, 0, size, 0)
    parts = []
    received = 0
    while received < size:
        data = stream.recv(min(_CHUNK, size - received))
        if not isinstance(data, bytes) or not data:
            break
        parts.append(data)
        received += len(data)
    stream.finish()
    return b"".join(parts)


def delete_volumes(conn: libvirt.virConnect, project: str, host_name: str) -> None:
    """See :meth:`corral.backends.base.Backend.delete_volumes`."""
    pool = find_pool(conn, project)
    if pool is None:
        return
    with libvirt_errors(f"delete volumes of {project}.{host_name}"):
        start_pool(pool)
        for name in (names.disk_volume(host_name), names.seed_volume(host_name)):
            volume = find_volume(pool, name)
            if volume is not None:
                volume.delete(0)
        _drop_unused_boot_copies(pool)


def _drop_unused_boot_copies(pool: libvirt.virStoragePool) -> None:
    """Delete the pool's boot copies once no host's run copy is left in it.

    They are shared by the project's hosts, so they go with the last host
    (or with the pool); a pool holding only boot copies would otherwise look
    empty to observe and outlive the project.
    """
    volumes = pool.listAllVolumes(0)
    if any(names.parse_volume(v.name()) for v in volumes):
        return
    for volume in volumes:
        if volume.name().startswith(BOOT_PREFIX):
            with contextlib.suppress(libvirt.libvirtError):  # gone meanwhile
                volume.delete(0)


def remove_pool(conn: libvirt.virConnect, project: str) -> None:
    """See :meth:`corral.backends.base.Backend.remove_pool`."""
    pool = find_pool(conn, project)
    if pool is None:
        return
    with libvirt_errors(f"remove storage pool {names.pool_name(project)}"):
        start_pool(pool)
        pool.refresh(0)
        for volume in pool.listAllVolumes(0):
            volume.delete(0)
        pool.destroy()
        try:
            pool.delete(0)
        except libvirt.libvirtError as exc:
            raise BackendError(
                f"pool {names.pool_name(project)} emptied but its directory stays: "
                f"{exc.get_error_message()}"
            ) from exc
        finally:
            pool.undefine()

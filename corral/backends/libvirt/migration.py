"""Moving a domain between two libvirt service hosts: live migration and cold copies.

Live: ``virDomainMigrate3`` driven from Corral's two connections (libvirt's
managed direct migration), the data going QEMU to QEMU over TCP to the
target's migration address. The domain is persisted on the target and
undefined on the source in the same step (``PERSIST_DEST|UNDEFINE_SOURCE``).
With storage not shared, ``NON_SHARED_INC`` mirrors only the disks' own
layers into overlays prepared on the target on the same templates, so the
template is never copied; read-only disks (the seed) and the kernel/initrd
copies are prepared there beforehand.

Cold: each volume is streamed from the source's pool into a volume of the
same name in the target's pool (``virStorageVolDownload`` into
``virStorageVolUpload``), hashed on the way, read back from the target and
hashed again; only equal digests count as a copy. Then the definition moves.

The destination XML is the source's own (so device addresses, the UUID and
hand-made additions survive) with every file path retargeted: a file that is
a volume of a pool on the source names the volume of the same pool and name
on the target, and a disk's backing file is what the target's volume says it
is backed by. Where the paths are the same, nothing changes. The serial
console's log goes to the target's pool of the same name; a live move copies
the log so far there and appends to it (see :func:`_continue_console_log`).

Shared storage is decided by a probe, not by a path: a small volume created
in the host's pool on the source must be listed, at the same path, by the
pool of the same name on the target after a refresh. libvirt itself only
trusts network file systems (and then only with ``cache=none``), so a move
on storage the probe proved shared is made with ``VIR_MIGRATE_UNSAFE``.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import secrets
from collections.abc import Callable

import libvirt
from lxml import etree

from corral.backends.base import ObservedVolume
from corral.backends.libvirt import console, lifecycle, pools, storage
from corral.backends.libvirt.connection import error_code, libvirt_errors
from corral.errors import BackendError, ConflictError, NotFoundError

PROBE_PREFIX = ".corral-probe-"
_CHUNK = 4 * 1024 * 1024
_LIVE_FLAGS = (
    libvirt.VIR_MIGRATE_LIVE
    | libvirt.VIR_MIGRATE_PERSIST_DEST
    | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
)
_XML_FLAGS = libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_MIGRATABLE


# --------------------------------------------------------------------------- shared storage


def shares_storage(
    source: libvirt.virConnect, target: libvirt.virConnect, spec: pools.PoolSpec
) -> bool:
    """True when a probe volume made in the pool ``spec`` through ``source`` is seen,
    at the same path, in the pool of that name through ``target``."""
    if spec.kind != "dir":
        return False  # a volume group is each machine's own
    here = pools.ensure(source, spec)
    there = pools.ensure(target, spec)
    name = PROBE_PREFIX + secrets.token_hex(8)
    with libvirt_errors(f"probe whether pool {spec.name} is shared"):
        probe = here.createXML(storage.raw_volume_xml(name, 512), 0)
        try:
            there.refresh(0)
            seen = pools.find_volume(there, name)
            return seen is not None and seen.path() == probe.path()
        finally:
            with contextlib.suppress(libvirt.libvirtError):
                probe.delete(0)
            with contextlib.suppress(libvirt.libvirtError):
                there.refresh(0)


def forget_pool(conn: libvirt.virConnect, spec: pools.PoolSpec) -> None:
    """Stop and undefine the pool ``spec`` here, leaving its directory and volumes:
    another service host uses them (a pool's ``delete`` would remove them)."""
    with libvirt_errors(f"undefine storage pool {spec.name}"):
        pool = pools.find(conn, spec.name)
        if pool is None:
            return
        if pool.isActive():
            pool.destroy()
        pool.undefine()


# --------------------------------------------------------------------------- paths


def _volume_of(conn: libvirt.virConnect, path: str) -> libvirt.virStorageVol | None:
    try:
        return conn.storageVolLookupByPath(path)
    except libvirt.libvirtError as exc:
        if error_code(exc) in (libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_NO_STORAGE_POOL):
            return None
        raise


def _counterpart(
    source: libvirt.virConnect, target: libvirt.virConnect, path: str, domain: str,
    rename: Callable[[str], str] = str,
) -> libvirt.virStorageVol | None:
    """The target's volume of the same pool and name (``rename`` of the name) as
    the source's volume at ``path``; None when ``path`` is no volume on the
    source (a file libvirt does not manage, left as it is)."""
    volume = _volume_of(source, path)
    if volume is None:
        return None
    pool_name = volume.storagePoolLookupByVolume().name()
    pool = pools.find(target, pool_name)
    found = None
    if pool is not None:
        pools.start(pool, build=False)
        pool.refresh(0)
        found = pools.find_volume(pool, rename(volume.name()))
    if found is None:
        raise NotFoundError(
            f"cannot move domain {domain}: the target has no volume {rename(volume.name())} "
            f"in pool {pool_name} (it was not prepared there)"
        )
    return found


def retarget(
    xml: str, source: libvirt.virConnect, target: libvirt.virConnect, domain: str,
    target_host: str,
) -> str:
    """The domain XML ``xml`` with every volume path of the source turned into the
    target's path of the same volume, disks' backing files into the target's, and
    the kernel and initrd into service host ``target_host``'s own boot copies."""
    root = etree.fromstring(xml.encode())
    for disk in root.iterfind("devices/disk"):
        element = disk.find("source")
        path = element.get("file") if element is not None else None
        if element is None or not path:
            continue
        there = _counterpart(source, target, path, domain)
        if there is None:
            continue
        element.set("file", there.path())
        backing = storage.backing_of(there)
        store = disk.find("backingStore/source")
        if backing and store is not None and store.get("file"):
            store.set("file", backing)
    for tag in ("os/kernel", "os/initrd"):
        element = root.find(tag)
        if element is not None and element.text:
            there = _counterpart(source, target, element.text, domain,
                                 lambda name: storage.boot_copy_for(name, target_host))
            if there is not None:
                element.text = there.path()
    for log in root.iterfind("devices/serial/log"):
        path = log.get("file")
        there_path = _log_path_there(source, target, path) if path else None
        if there_path is not None:
            log.set("file", there_path)
    return etree.tostring(root, encoding="unicode")


def _log_path_there(
    source: libvirt.virConnect, target: libvirt.virConnect, path: str
) -> str | None:
    """Where the target keeps the console log the source keeps at ``path``: the same
    name in the directory of the target's pool of the same name (the service hosts'
    runs directories may differ). None when no pool holds it on the source, or the
    target has no such pool (left as it is)."""
    directory, name = posixpath.split(path)
    for pool in pools.at(source, directory):
        counterpart = pools.find(target, pool.name())
        there = pools.directory(counterpart) if counterpart is not None else None
        if there is not None:
            return posixpath.join(there, name)
    return None


def _continue_console_log(
    source: libvirt.virConnect, target: libvirt.virConnect, domain: libvirt.virDomain,
    live_xml: str, *, copy: bool,
) -> str:
    """``live_xml`` with the serial console's log appended to on the target instead
    of begun afresh, after what the guest printed on the source: the log keeps
    holding the whole of the current boot (what readiness and ``corral vm log``
    read) wherever the guest runs. With storage not shared (``copy``) the
    source's log is first copied into the target's pool; shared, it is the same
    file. What the guest prints while its memory moves reaches the source's
    log after the copy was made and is lost; the next boot on the target
    truncates the log again (the persistent definition keeps ``append='off'``)."""
    root = etree.fromstring(live_xml.encode())
    for log in root.iterfind("devices/serial/log"):
        path, here = log.get("file"), console.logged_path(domain)
        if path is None or here is None:
            continue
        if copy:
            _copy_log(source, here, target, path)
        log.set("append", "on")
    return etree.tostring(root, encoding="unicode")


def _copy_log(source: libvirt.virConnect, here: str, target: libvirt.virConnect,
              there: str) -> None:
    """The source's log file at ``here`` as a volume at ``there`` on the target."""
    data = console.log_bytes(source, here, local=storage.is_local(source))
    directory, name = posixpath.split(there)
    holders = pools.at(target, directory)
    if not data or not holders:
        return
    pool = holders[0]
    pool.refresh(0)  # a log virtlogd wrote there earlier is a volume only after it
    stale = pools.find_volume(pool, name)
    if stale is not None:
        stale.delete(0)
    storage.upload(target, pool.createXML(storage.raw_volume_xml(name, len(data)), 0), data)


# --------------------------------------------------------------------------- live


def migrate_live(
    source: libvirt.virConnect,
    target: libvirt.virConnect,
    name: str,
    *,
    address: str | None,
    copy_storage: bool,
    source_host: str,
    target_host: str,
) -> None:
    """See :meth:`corral.backends.base.Backend.migrate_live`."""
    domain = lifecycle.lookup(source, name)
    if not domain.isActive():
        raise ConflictError(f"domain {name} is not running on {source_host}: nothing to move live")
    with libvirt_errors(f"prepare the migration of {name} to {target_host}"):
        live_xml = retarget(domain.XMLDesc(_XML_FLAGS), source, target, name, target_host)
        persistent_xml = retarget(
            domain.XMLDesc(_XML_FLAGS | libvirt.VIR_DOMAIN_XML_INACTIVE), source, target, name,
            target_host,
        )
        live_xml = _continue_console_log(source, target, domain, live_xml, copy=copy_storage)
    params: dict[str, object] = {
        libvirt.VIR_MIGRATE_PARAM_DEST_XML: live_xml,
        libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: persistent_xml,
    }
    if address:
        params[libvirt.VIR_MIGRATE_PARAM_URI] = f"tcp://{_uri_host(address)}"
    # Shared storage was proven by a probe (see shares_storage); libvirt can only
    # recognise network file systems, so it is told not to second-guess it.
    flags = _LIVE_FLAGS | (
        libvirt.VIR_MIGRATE_NON_SHARED_INC if copy_storage else libvirt.VIR_MIGRATE_UNSAFE
    )
    try:
        domain.migrate3(target, params, flags)
    except libvirt.libvirtError as exc:
        reason = exc.get_error_message() or str(exc)
        where = _still_on(source, name, source_host)
        unreachable = any(w in reason.lower() for w in ("connect", "route", "resolve"))
        raise BackendError(
            f"cannot migrate domain {name} from {source_host} to {target_host}: "
            f"{reason}; {where}",
            hint=f"is {target_host}'s migration address ({address or 'its host name'}) "
            f"reachable from {source_host}? (migration_address in corral.toml)"
            if unreachable else None,
        ) from exc
    _verify_moved(source, target, name, source_host, target_host, running=True)


def _uri_host(address: str) -> str:
    """An address as it stands in a URI: IPv6 literals in brackets."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def _still_on(conn: libvirt.virConnect, name: str, service_host: str) -> str:
    """What became of the domain on the source after a failed move, for the message."""
    try:
        found = lifecycle.find(conn, name)
        if found is None:
            return f"it is no longer defined on {service_host}"
        return f"it still {'runs' if found.isActive() else 'is defined'} on {service_host}"
    except libvirt.libvirtError as exc:
        return f"its state on {service_host} is unknown ({exc.get_error_message()})"


def _verify_moved(
    source: libvirt.virConnect,
    target: libvirt.virConnect,
    name: str,
    source_host: str,
    target_host: str,
    *,
    running: bool,
) -> None:
    """The domain is defined on the target (running there when ``running``) and no
    longer on the source."""
    with libvirt_errors(f"check domain {name} on {target_host}"):
        moved = lifecycle.find(target, name)
        if moved is None or not moved.isPersistent() or (running and not moved.isActive()):
            raise BackendError(
                f"domain {name} did not arrive on {target_host} as expected; "
                f"{_still_on(source, name, source_host)}"
            )
        left = lifecycle.find(source, name)
    if left is not None:
        raise BackendError(
            f"domain {name} is on {target_host} but still defined on {source_host}",
            hint=f"undefine it there once its disks are no longer needed: "
            f"virsh undefine {name}",
        )


# --------------------------------------------------------------------------- cold


def copy_volume(
    source: libvirt.virConnect,
    target: libvirt.virConnect,
    volume: ObservedVolume,
    spec: pools.PoolSpec,
) -> str:
    """See :meth:`corral.backends.base.Backend.copy_volume`."""
    where = f"copy volume {volume.name} to pool {spec.name}"
    with libvirt_errors(where):
        original = source.storageVolLookupByPath(volume.path)
        size = int(original.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)[2])
        pool = pools.ensure(target, spec)
        stale = pools.find_volume(pool, volume.name)
        if stale is not None:  # a copy cut short earlier: the name says what it must hold
            stale.delete(0)
        copy = pool.createXML(_sized_volume_xml(volume.name, size), 0)
        try:
            sent = _pipe(source, original, target, copy, size)
            received = _digest(target, copy, size)
            if sent != received:
                raise BackendError(
                    f"cannot {where}: the copy's SHA-256 ({received[:16]}...) differs from "
                    f"the original's ({sent[:16]}...)"
                )
            pool.refresh(0)  # libvirt reads the copy's format and backing file again
            return str(pools.find_volume(pool, volume.name).path())  # type: ignore[union-attr]
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):
                copy.delete(0)
            raise


def _sized_volume_xml(name: str, size: int) -> str:
    """A sparse file volume of ``size`` bytes that an upload fills byte for byte."""
    root = etree.fromstring(storage.raw_volume_xml(name, size).encode())
    etree.SubElement(root, "allocation", unit="bytes").text = "0"
    return etree.tostring(root, encoding="unicode")


def _pipe(
    source: libvirt.virConnect,
    original: libvirt.virStorageVol,
    target: libvirt.virConnect,
    copy: libvirt.virStorageVol,
    size: int,
) -> str:
    """Stream ``size`` bytes of ``original`` into ``copy``; the SHA-256 of what went."""
    digest = hashlib.sha256()
    down, up = source.newStream(0), target.newStream(0)
    try:
        original.download(down, 0, size, 0)
        copy.upload(up, 0, size, 0)

        def forward(chunk: bytes) -> None:
            digest.update(chunk)
            _send(up, chunk)

        _drain(down, size, forward)
        down.finish()
        up.finish()
    except BaseException:
        for stream in (down, up):
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
        raise
    return digest.hexdigest()


def _send(stream: libvirt.virStream, chunk: bytes) -> None:
    sent = 0
    while sent < len(chunk):
        sent += stream.send(chunk[sent:])


def _digest(conn: libvirt.virConnect, volume: libvirt.virStorageVol, size: int) -> str:
    """The SHA-256 of the first ``size`` bytes of ``volume``, read back through a stream."""
    digest = hashlib.sha256()
    stream = conn.newStream(0)
    try:
        volume.download(stream, 0, size, 0)
        _drain(stream, size, digest.update)
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise
    return digest.hexdigest()


def _drain(stream: libvirt.virStream, size: int, consume: Callable[[bytes], object]) -> None:
    received = 0
    while received < size:
        data = stream.recv(min(_CHUNK, size - received))
        if not isinstance(data, bytes) or not data:
            break
        consume(data)
        received += len(data)
    if received != size:
        raise BackendError(f"volume stream ended after {received} of {size} bytes")


def move_definition(
    source: libvirt.virConnect,
    target: libvirt.virConnect,
    name: str,
    *,
    source_host: str,
    target_host: str,
) -> None:
    """See :meth:`corral.backends.base.Backend.move_definition`."""
    domain = lifecycle.lookup(source, name)
    if domain.isActive():
        raise ConflictError(f"domain {name} runs on {source_host}: stop it to move it cold")
    if domain.hasManagedSaveImage(0):
        raise ConflictError(
            f"domain {name} has saved memory on {source_host}",
            hint="restore or start it (a live move keeps its memory), or destroy it first",
        )
    with libvirt_errors(f"define domain {name} on {target_host}"):
        xml = retarget(
            domain.XMLDesc(_XML_FLAGS | libvirt.VIR_DOMAIN_XML_INACTIVE), source, target, name,
            target_host,
        )
        if lifecycle.find(target, name) is not None:
            raise ConflictError(f"domain {name} already exists on {target_host}")
        target.defineXML(xml)
    lifecycle.undefine(source, name)
    _verify_moved(source, target, name, source_host, target_host, running=False)

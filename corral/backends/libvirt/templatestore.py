"""A remote service host's own copies of the site's templates, reached through libvirt only.

A service host runs nothing but libvirtd, and it does not see the site's
template registry (a directory on the machine Corral runs on). So the first
time a host of that service host needs a template, each file it needs (the
disk; the kernel and initrd of a direct-boot template) is uploaded through a
``virStorageVolUpload`` stream into the service host's template pool
``corral.templates`` (a ``dir`` pool in the service host's ``storage``
directory), then downloaded again through a stream and hashed: libvirt cannot
hash a volume where it lives, and a copy that differs from the registry's
sha256 is deleted and reported, naming the service host and the template.

A copy's volume name carries the template, the first 16 hex digits of the
file's sha256 and the registry's file name (``tiny.a771e5f91e240277.disk.qcow2``),
so a template re-registered with other bytes gets a new copy instead of
changing a file that run copies are based on. Later uses find the copy by
name and reuse it after a cheap check: its size.

Concurrent uploads of one copy (threads of one backend, two Corral processes,
or two service hosts whose ``storage`` is one shared directory) cannot
corrupt it. A copy is created empty and grows as the stream writes it in
order, so it has its full size only once its upload is complete: whoever
loses the race to create it (libvirt refuses a second volume of that name)
waits while it grows; a copy that stops growing short of its size for
``stall_s`` seconds (an upload that was killed) is deleted and uploaded again.

The copies are the site's templates, not a project's: ``corral remove`` never
deletes them. ``virsh vol-delete --pool corral.templates NAME`` drops one.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import libvirt
from lxml import etree

from corral.backends.libvirt import pools
from corral.backends.libvirt.connection import error_code, libvirt_errors
from corral.backends.libvirt.pools import find_volume
from corral.errors import BackendError, NotFoundError

POOL = "corral.templates"
DIGEST_CHARS = 16
_NAME = re.compile(rf"(?P<template>.+)\.(?P<digest>[0-9a-f]{{{DIGEST_CHARS}}})\.(?P<file>.+)")
_CHUNK = 4 * 1024 * 1024
_POLL_S = 0.5
_ROUNDS = 5  # create-or-find attempts before giving up on a name that stays taken


@dataclass(frozen=True, slots=True)
class TemplateFile:
    """One file of a registered template, as the site's registry holds it."""

    template: str
    source: Path  # the registry's file, on the machine Corral runs on
    sha256: str

    @property
    def file(self) -> str:
        return self.source.name

    @property
    def volume(self) -> str:
        """The name of its copy in a service host's template pool."""
        return volume_name(self.template, self.file, self.sha256)


@dataclass(frozen=True, slots=True)
class StoredCopy:
    """A copy found in a service host's template pool (``corral template copies``)."""

    template: str
    file: str
    digest: str  # the first 16 hex digits of its sha256, from its name
    size: int
    path: str
    volume: str


@dataclass
class TemplateStore:
    """One service host's template pool, and the copies this process has seen whole.

    ``whole`` maps a copy's volume name to its path once it was uploaded and
    verified, or found at its full size, so the hosts of a project after the
    first cost no libvirt call. ``uploads`` counts the copies this store
    uploaded (the rest were reused). The lock serialises the backend's threads.
    """

    service_host: str
    directory: str
    stall_s: float = 30.0
    pool: str = POOL
    lock: threading.Lock = field(default_factory=threading.Lock)
    whole: dict[str, str] = field(default_factory=dict)
    uploads: int = 0

    @property
    def spec(self) -> pools.PoolSpec:
        return pools.dir_pool(self.pool, self.directory)

    def forget(self) -> None:
        """Look at every copy afresh next time (after copies were dropped or checked)."""
        with self.lock:
            self.whole.clear()


def volume_name(template: str, file: str, sha256: str) -> str:
    return f"{template}.{sha256[:DIGEST_CHARS]}.{file}"


def parse_volume_name(name: str) -> tuple[str, str, str] | None:
    """``(template, digest, file)`` of a copy's volume name; None for anything else."""
    found = _NAME.fullmatch(name)
    return (found["template"], found["digest"], found["file"]) if found else None


def template_file(template: str, source: str | Path, recorded: str | None) -> TemplateFile:
    """The file with the sha256 the registry recorded, else the file's own (hashed now)."""
    path = Path(source)
    return TemplateFile(template, path, recorded or _hash_local(path, template))


def ensure_copy(conn: libvirt.virConnect, store: TemplateStore, wanted: TemplateFile) -> str:
    """The path of the service host's copy of ``wanted``, uploaded and verified if missing."""
    with store.lock:
        known = store.whole.get(wanted.volume)
        if known is not None:
            return known
        pool = pools.ensure(conn, store.spec)
        what = f"copy template {wanted.template} to service host {store.service_host}"
        with libvirt_errors(what):
            path = _ensure(conn, store, pool, wanted)
        store.whole[wanted.volume] = path
        return path


def _ensure(
    conn: libvirt.virConnect,
    store: TemplateStore,
    pool: libvirt.virStoragePool,
    wanted: TemplateFile,
) -> str:
    size = _local_size(wanted)
    for _ in range(_ROUNDS):
        refresh(pool)  # another service host sharing the directory may have written it
        volume = find_volume(pool, wanted.volume)
        if volume is None:
            try:
                volume = pool.createXML(empty_volume_xml(wanted.volume), 0)
            except libvirt.libvirtError as exc:
                if error_code(exc) == libvirt.VIR_ERR_STORAGE_VOL_EXIST or exists_error(exc):
                    continue  # another uploader won: wait for its copy below
                raise
            _upload_and_verify(conn, store, volume, wanted, size)
            store.uploads += 1
            return str(volume.path())
        if await_size(volume, size, store.stall_s):
            return str(volume.path())
        _delete_stale(volume, wanted, store)
    raise BackendError(
        f"service host {store.service_host}: cannot make a copy of template "
        f"{wanted.template} ({wanted.file}) in pool {store.pool}: its name stays taken",
        hint=f"look at virsh vol-list {store.pool} on that host",
    )


def await_size(volume: libvirt.virStorageVol, size: int, stall_s: float) -> bool:
    """True once ``volume`` has ``size`` bytes; False when it is longer, is deleted
    (its writer found it wrong), or stops growing short of it for ``stall_s``
    seconds (a writer that was killed)."""
    last, since = -1, time.monotonic()
    while True:
        try:
            now = physical_size(volume)
        except libvirt.libvirtError as exc:
            if error_code(exc) == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return False  # its writer gave up and deleted it: make it anew
            raise
        if now == size:
            return True
        if now > size:
            return False
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > stall_s:
            return False
        time.sleep(_POLL_S)


def _delete_stale(
    volume: libvirt.virStorageVol, wanted: TemplateFile, store: TemplateStore
) -> None:
    try:
        volume.delete(0)
    except libvirt.libvirtError as exc:
        if error_code(exc) != libvirt.VIR_ERR_NO_STORAGE_VOL:
            raise BackendError(
                f"service host {store.service_host}: the copy of template {wanted.template} "
                f"({wanted.file}) is incomplete and cannot be deleted: "
                f"{exc.get_error_message()}",
                hint=f"delete it with virsh vol-delete --pool {store.pool} {wanted.volume}",
            ) from exc


def _upload_and_verify(
    conn: libvirt.virConnect,
    store: TemplateStore,
    volume: libvirt.virStorageVol,
    wanted: TemplateFile,
    size: int,
) -> None:
    """Stream the registry's file into ``volume``, then read it back and compare sha256s.

    The bytes sent are hashed too: a registry file changed on disk is not
    passed off as the template the manifest describes.
    """
    sent = hashlib.sha256()
    try:
        with wanted.source.open("rb") as source:
            def chunks() -> Iterator[bytes]:
                for chunk in iter(lambda: source.read(_CHUNK), b""):
                    sent.update(chunk)
                    yield chunk
            stream_into(conn, volume, size, chunks())
    except OSError as exc:
        _delete_quietly(volume)
        raise NotFoundError(f"cannot read template file {wanted.source}: {exc.strerror}") from exc
    except BaseException:
        _delete_quietly(volume)
        raise
    if sent.hexdigest() != wanted.sha256:
        _delete_quietly(volume)
        raise BackendError(
            f"template {wanted.template} changed on disk: {wanted.source}",
            hint=f"register template {wanted.template} again (corral template add)",
        )
    there = download_sha256(conn, volume)
    if there != wanted.sha256:
        _delete_quietly(volume)
        raise BackendError(
            f"service host {store.service_host}: the uploaded copy of template "
            f"{wanted.template} ({wanted.file}) has sha256 {there}, not {wanted.sha256}; "
            "it was deleted",
            hint="check the service host's storage; the next use uploads it again",
        )


def verify_copy(conn: libvirt.virConnect, store: TemplateStore, wanted: TemplateFile) -> str | None:
    """Download the service host's copy of ``wanted`` and hash it: None when it matches
    (or there is no copy), else what is wrong. A copy that does not match is
    deleted, so the next use uploads it again."""
    with store.lock, libvirt_errors(f"check template copies on {store.service_host}"):
        store.whole.pop(wanted.volume, None)
        pool = pools.find(conn, store.pool)
        if pool is None:
            return None
        pools.start(pool, build=True)
        refresh(pool)
        volume = find_volume(pool, wanted.volume)
        if volume is None:
            return None
        there = download_sha256(conn, volume)
        if there == wanted.sha256:
            return None
        path = volume.path()
        _delete_quietly(volume)
        return (
            f"service host {store.service_host}: the copy of template {wanted.template} "
            f"({wanted.file}, {path}) has sha256 {there}, not {wanted.sha256}; "
            "deleted, the next use uploads it again"
        )


def copies(conn: libvirt.virConnect, store: TemplateStore) -> list[StoredCopy]:
    """Every template copy in the service host's template pool (none without the pool)."""
    with libvirt_errors(f"list the storage pool {store.pool}"):
        pool = pools.find(conn, store.pool)
        if pool is None or not pool.isActive():
            return []
        refresh(pool)
        found = []
        for volume in pool.listAllVolumes(0):
            parsed = parse_volume_name(volume.name())
            if parsed is not None:
                found.append(StoredCopy(parsed[0], parsed[2], parsed[1], physical_size(volume),
                                        str(volume.path()), volume.name()))
        return sorted(found, key=lambda c: (c.template, c.file, c.digest))


# --------------------------------------------------------------------------- libvirt helpers


def empty_volume_xml(name: str) -> str:
    """A raw volume of no bytes, readable by the hypervisor's user: it grows as a
    stream writes it, so its size tells whether the upload is complete."""
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "capacity", unit="bytes").text = "0"
    etree.SubElement(root, "allocation", unit="bytes").text = "0"
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "format", type="raw")
    permissions = etree.SubElement(target, "permissions")
    etree.SubElement(permissions, "mode").text = "0444"
    return etree.tostring(root, encoding="unicode")


def refresh(pool: libvirt.virStoragePool) -> None:
    """Re-read the pool's directory, so files another daemon wrote there are known.

    libvirt refuses while the pool has a volume being built (a clone in
    progress); what it already lists is then good enough for a look-up.
    """
    with contextlib.suppress(libvirt.libvirtError):
        pool.refresh(0)


def physical_size(volume: libvirt.virStorageVol) -> int:
    """The bytes in the volume's file (a qcow2 file's capacity is its virtual size)."""
    return int(volume.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)[2])


def stream_into(
    conn: libvirt.virConnect, volume: libvirt.virStorageVol, size: int, chunks: Iterator[bytes]
) -> None:
    """Write ``size`` bytes into ``volume`` through a libvirt stream (works remotely)."""
    stream = conn.newStream(0)
    try:
        volume.upload(stream, 0, size, 0)
        for chunk in chunks:
            sent = 0
            while sent < len(chunk):
                sent += stream.send(chunk[sent:])
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise


def download_chunks(
    conn: libvirt.virConnect, volume: libvirt.virStorageVol, take: Callable[[bytes], None]
) -> int:
    """Feed the volume's bytes, read through a stream, to ``take``; the count read."""
    size = physical_size(volume)
    stream = conn.newStream(0)
    volume.download(stream, 0, size, 0)
    received = 0
    try:
        while received < size:
            data = stream.recv(min(_CHUNK, size - received))
            if not isinstance(data, bytes) or not data:
                break
            take(data)
            received += len(data)
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise
    return received


def download_sha256(conn: libvirt.virConnect, volume: libvirt.virStorageVol) -> str:
    """The sha256 of the volume's bytes, hashed here as they arrive (never all in memory)."""
    digest = hashlib.sha256()
    download_chunks(conn, volume, digest.update)
    return digest.hexdigest()


def _delete_quietly(volume: libvirt.virStorageVol) -> None:
    with contextlib.suppress(libvirt.libvirtError):
        volume.delete(0)


def exists_error(exc: libvirt.libvirtError) -> bool:
    """A create refused because the file is there already (another daemon wrote it)."""
    return "already exists" in (exc.get_error_message() or "") or "exists already" in (
        exc.get_error_message() or ""
    )


def _local_size(wanted: TemplateFile) -> int:
    try:
        return wanted.source.stat().st_size
    except OSError as exc:
        raise NotFoundError(
            f"cannot read template file {wanted.source}: {exc.strerror}"
        ) from exc


def _hash_local(path: Path, template: str) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as source:
            for chunk in iter(lambda: source.read(_CHUNK), b""):
                digest.update(chunk)
    except OSError as exc:
        raise NotFoundError(
            f"cannot read file {path} of template {template}: {exc.strerror}"
        ) from exc
    return digest.hexdigest()

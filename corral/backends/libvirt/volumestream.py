"""Whole volumes in and out through libvirt streams: what ``corral export`` reads
and ``corral import`` writes.

Both go through ``virStorageVolDownload``/``virStorageVolUpload``, so an
archive is made of, and restored onto, a remote service host exactly as onto
this machine. A volume is read to the end of its file (a qcow2 overlay's own
layer, not what it is based on); a received volume is created as a sparse file
of the right size, filled in order, and the pool is refreshed afterwards so
that libvirt reads its format and backing file from its header.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import libvirt
from lxml import etree

from corral.backends.base import StoragePlace
from corral.backends.libvirt import names, pools, storage, templatestore
from corral.backends.libvirt.connection import libvirt_errors
from corral.errors import BackendError, ConflictError


def read_volume(conn: libvirt.virConnect, path: str, take: Callable[[bytes], None]) -> int:
    """Feed every byte of the volume at ``path`` to ``take``; the count read."""
    with libvirt_errors(f"read volume {path}"):
        volume = conn.storageVolLookupByPath(path)
        size = templatestore.physical_size(volume)
        read = templatestore.download_chunks(conn, volume, take)
    if read != size:
        raise BackendError(f"volume {path}: its stream ended after {read} of {size} bytes")
    return read


def receive_volume(
    conn: libvirt.virConnect,
    runs_dir: str,
    project: str,
    host_name: str,
    place: StoragePlace,
    size: int,
    chunks: Iterator[bytes],
    *,
    disk: str | None = None,
) -> str:
    """Create the host's run copy (``disk``: that extra disk) of ``size`` bytes in
    the project's pool for ``place`` and fill it from ``chunks``; its path. A
    volume of that name is never overwritten (refused); one cut short by a
    failure is deleted again."""
    name = names.disk_volume(host_name) if disk is None else names.data_volume(host_name, disk)
    if place.volume_group:
        raise ConflictError(f"volume {name}: archives restore into directory pools only, "
                            f"not onto volume group {place.volume_group}")
    spec = pools.pool_for(project, runs_dir, place)
    with libvirt_errors(f"write volume {name} into pool {spec.name}"):
        pool = pools.ensure(conn, spec)
        templatestore.refresh(pool)
        if pools.find_volume(pool, name) is not None:
            raise ConflictError(f"pool {spec.name} has a volume {name} already",
                                hint=f"remove project {project} first (corral remove -p "
                                f"{project}), or import it under another name (--as)")
        volume = pool.createXML(_sparse_volume_xml(name, size), 0)
        try:
            templatestore.stream_into(conn, volume, size, chunks)
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):
                volume.delete(0)
            raise
        pool.refresh(0)  # libvirt reads the format and backing file from the header
        found = pools.find_volume(pool, name)
        if found is None:
            raise BackendError(f"volume {name} vanished from pool {spec.name} after its upload")
        return str(found.path())


def _sparse_volume_xml(name: str, size: int) -> str:
    root = etree.fromstring(storage.raw_volume_xml(name, size).encode())
    etree.SubElement(root, "allocation", unit="bytes").text = "0"
    return etree.tostring(root, encoding="unicode")

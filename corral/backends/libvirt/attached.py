"""Existing image files a host attaches as they are (``disk NAME { path FILE }``).

Such a file is the site's, not Corral's: it is never created, resized or
deleted here, only looked at. The file is on the service host, which may be
another machine, so it is asked of that host's libvirt rather than of this
machine's filesystem: libvirt's storage driver knows a file when a pool
holds its directory. A pool that already holds it is refreshed and asked;
otherwise a transient ``dir`` pool is made over the directory for the time
of one look-up, then destroyed, which stops it and leaves the directory and
its files as they were (a transient pool is never built nor deleted).
"""

from __future__ import annotations

import posixpath
import secrets

import libvirt
from lxml import etree

from corral.backends.libvirt import pools
from corral.backends.libvirt.connection import libvirt_errors

PROBE_POOL_PREFIX = "corral.probe."  # not "corral-": no project pool
# Formats libvirt's storage driver reports that QEMU reads as raw bytes.
_READ_AS_RAW = frozenset({"iso", "none", ""})


def image_format(conn: libvirt.virConnect, path: str) -> str | None:
    """The format of the file at ``path`` on this service host (``raw``,
    ``qcow2``, ...), as libvirt's storage driver probes it; None when there is
    no such file."""
    volume = _known_volume(conn, path)
    if volume is not None:
        return _format_of(volume)
    directory = posixpath.dirname(path)
    for pool in pools.at(conn, directory):
        with libvirt_errors(f"refresh storage pool {pool.name()}"):
            pool.refresh(0)
        volume = _known_volume(conn, path)
        if volume is not None:
            return _format_of(volume)
    if pools.at(conn, directory):
        return None  # a pool holds the directory and lists no such file
    return _probe_with_transient_pool(conn, directory, posixpath.basename(path))


def _known_volume(conn: libvirt.virConnect, path: str) -> libvirt.virStorageVol | None:
    try:
        return conn.storageVolLookupByPath(path)
    except libvirt.libvirtError:
        return None


def _probe_with_transient_pool(
    conn: libvirt.virConnect, directory: str, name: str
) -> str | None:
    """Look ``name`` up in a short-lived pool over ``directory``; None when the
    directory or the file is not there."""
    root = etree.Element("pool", type="dir")
    etree.SubElement(root, "name").text = PROBE_POOL_PREFIX + secrets.token_hex(8)
    etree.SubElement(etree.SubElement(root, "target"), "path").text = directory
    try:
        pool = conn.storagePoolCreateXML(etree.tostring(root, encoding="unicode"), 0)
    except libvirt.libvirtError:
        return None  # no such directory (or one libvirt may not read)
    try:
        try:
            volume = pool.storageVolLookupByName(name)
        except libvirt.libvirtError:
            return None
        return _format_of(volume)
    finally:
        with libvirt_errors(f"stop storage pool {pool.name()}"):
            pool.destroy()


def _format_of(volume: libvirt.virStorageVol) -> str:
    found = etree.fromstring(volume.XMLDesc(0).encode()).find("target/format")
    kind = found.get("type", "") if found is not None else ""
    return "raw" if kind in _READ_AS_RAW else kind

"""Which storage pool holds a host's volumes, and making sure it exists.

Three kinds, chosen by :class:`~corral.backends.base.StoragePlace`:

* the project's directory pool ``corral-PROJECT`` at ``RUNS/PROJECT`` (default);
* a directory pool ``corral-PROJECT.dir-XXXXXXXX`` at ``DIR/PROJECT`` for
  hosts with ``filepath DIR`` (a pool's directory is owned by that project,
  so two projects can share DIR and libvirt's one-pool-per-path rule holds);
* the logical pool ``corral.lvm.VG`` on an existing LVM volume group, shared
  by every project because libvirt allows one pool per group. Corral never
  builds (``vgcreate``) or deletes the group: it only adds and removes its own
  logical volumes.

A remote service host also has the template store ``corral.templates``, a
directory pool holding its copies of the site's templates (see
:mod:`.templatestore`); its name is no project's.

Pools are defined with autostart on, so their volumes are visible again after
a daemon restart. Observing never starts a pool; only building does.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import PurePosixPath

import libvirt
from lxml import etree

from corral.backends.base import StoragePlace
from corral.backends.libvirt import names
from corral.backends.libvirt.connection import error_code, libvirt_errors
from corral.errors import BackendError, NotFoundError


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """A pool Corral may create: its name, kind and XML."""

    name: str
    kind: str  # "dir" or "logical"
    xml: str


def project_pool(project: str, runs_dir: str) -> PoolSpec:
    return dir_pool(names.pool_name(project), str(PurePosixPath(runs_dir) / project))


def pool_for(project: str, runs_dir: str, place: StoragePlace) -> PoolSpec:
    """The pool that holds the disks of a host stored at ``place``."""
    if place.volume_group:
        return logical_pool(place.volume_group)
    if place.directory:
        return dir_pool(
            names.directory_pool_name(project, place.directory),
            str(PurePosixPath(place.directory) / project),
        )
    return project_pool(project, runs_dir)


def dir_pool(name: str, path: str) -> PoolSpec:
    root = etree.Element("pool", type="dir")
    etree.SubElement(root, "name").text = name
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "path").text = path
    permissions = etree.SubElement(target, "permissions")
    etree.SubElement(permissions, "mode").text = "0755"
    return PoolSpec(name, "dir", etree.tostring(root, encoding="unicode"))


def logical_pool(volume_group: str) -> PoolSpec:
    root = etree.Element("pool", type="logical")
    etree.SubElement(root, "name").text = names.lvm_pool_name(volume_group)
    source = etree.SubElement(root, "source")
    etree.SubElement(source, "name").text = volume_group
    etree.SubElement(source, "format", type="lvm2")
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "path").text = f"/dev/{volume_group}"
    xml = etree.tostring(root, encoding="unicode")
    return PoolSpec(names.lvm_pool_name(volume_group), "logical", xml)


def directory(pool: libvirt.virStoragePool) -> str | None:
    """The directory a pool keeps its volumes in (None for a pool without one)."""
    target = etree.fromstring(pool.XMLDesc(0).encode()).findtext("target/path")
    return posixpath.normpath(target) if target else None


def at(conn: libvirt.virConnect, path: str) -> list[libvirt.virStoragePool]:
    """The active pools whose directory is ``path``: a file there is their volume,
    known to them once they are refreshed."""
    where = posixpath.normpath(path)
    active = conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)
    return [pool for pool in active if directory(pool) == where]


def find(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool | None:
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_STORAGE_POOL:
            return None
        raise


def ensure(conn: libvirt.virConnect, spec: PoolSpec) -> libvirt.virStoragePool:
    """The pool, defined, built (a directory pool) and active.

    Hosts of one project are built in parallel (threads, or two corral
    processes), so another caller may define or start the pool between our
    look-up and our call: losing that race is fine, not an error.
    """
    with libvirt_errors(f"prepare storage pool {spec.name}"):
        pool = find(conn, spec.name)
        if pool is None:
            try:
                pool = conn.storagePoolDefineXML(spec.xml, 0)
                if spec.kind == "dir":
                    pool.build(0)
            except libvirt.libvirtError:
                pool = find(conn, spec.name)
                if pool is None:
                    raise
        start(pool, build=spec.kind == "dir")
        if not pool.autostart():
            pool.setAutostart(1)
        return pool


def start(pool: libvirt.virStoragePool, *, build: bool = True) -> None:
    """Make a defined pool active, building a directory pool's directory when missing.

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
        if not build:
            raise
    try:
        pool.build(0)
        pool.create(0)
    except libvirt.libvirtError:
        if not pool.isActive():
            raise


def volume_groups(conn: libvirt.virConnect, service_host: str) -> list[str]:
    """The LVM volume groups of the service host, as libvirt's pool discovery finds them."""
    try:
        xml = conn.findStoragePoolSources("logical", None, 0)
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_SUPPORT:
            return []
        raise BackendError(
            f"service host {service_host}: cannot list LVM volume groups: "
            f"{exc.get_error_message()}"
        ) from exc
    root = etree.fromstring(xml.encode())
    return sorted({n.text for n in root.iterfind("source/name") if n.text})


def require_volume_group(conn: libvirt.virConnect, service_host: str, group: str) -> None:
    """NotFoundError naming the service host when it has no group ``group``."""
    try:
        found = volume_groups(conn, service_host)
    except BackendError as error:
        raise NotFoundError(
            f"service host {service_host} has no LVM volume group '{group}' that libvirt "
            "can find",
            hint=error.message,
        ) from error
    if group not in found:
        raise NotFoundError(
            f"service host {service_host} has no LVM volume group '{group}'",
            hint=f"volume groups there: {', '.join(found) or 'none'}",
        )


def find_volume(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return None
        raise

"""How Corral names what it creates in libvirt.

Names begin with the project, so an administrator using ``virsh`` sees whose
they are: domains ``PROJECT-HOST``, networks ``PROJECT-SWITCH``, storage pools
``corral-PROJECT`` with volumes ``HOST.qcow2`` (run copy) and ``HOST-seed.iso``,
and the serial console's log ``HOST-console.log`` beside the seed (written by
virtlogd, read as a volume; not a disk, so :func:`parse_volume` ignores it).
Extra disks are ``HOST.DISK.qcow2`` (a dot cannot occur in a host name), or
``HOST.DISK.raw`` for ``type raw``. A
host with ``filepath DIR`` keeps its volumes, under the same names, in a
second project pool ``corral-PROJECT.dir-XXXXXXXX`` at ``DIR/PROJECT`` (8 hex
digits of a digest of DIR). Logical volumes (``lvm``) live in one pool per
volume group, ``corral.lvm.VG``, shared by every project, since libvirt allows
one pool per group; there the volume names carry the project:
``PROJECT.HOST`` and ``PROJECT.HOST.DISK``.

Ownership is never decided from a name alone, though: domains and networks
carry Corral metadata, and a volume is Corral's because it lives in one of
the project's pools (or, on LVM, in Corral's pool under the project's name).

Linux limits interface names to 15 characters, too few for ``PROJECT-SWITCH``,
so bridges are named ``crl-`` plus 8 hex digits of a digest of project and
switch: stable, and distinct in practice (2^32 values).
"""

from __future__ import annotations

import hashlib

POOL_PREFIX = "corral-"
DISK_SUFFIX = ".qcow2"
RAW_DATA_SUFFIX = ".raw"
SEED_SUFFIX = "-seed.iso"
CONSOLE_LOG_SUFFIX = "-console.log"


def domain_name(project: str, host: str) -> str:
    return f"{project}-{host}"


def network_name(project: str, switch: str) -> str:
    return f"{project}-{switch}"


def bridge_name(project: str, switch: str) -> str:
    digest = hashlib.sha256(f"{project}/{switch}".encode()).hexdigest()
    return f"crl-{digest[:8]}"


LVM_POOL_PREFIX = "corral.lvm."
DIRECTORY_POOL_TAG = ".dir-"


def pool_name(project: str) -> str:
    return f"{POOL_PREFIX}{project}"


def directory_pool_name(project: str, directory: str) -> str:
    digest = hashlib.sha256(directory.encode()).hexdigest()[:8]
    return f"{POOL_PREFIX}{project}{DIRECTORY_POOL_TAG}{digest}"


def lvm_pool_name(volume_group: str) -> str:
    return f"{LVM_POOL_PREFIX}{volume_group}"


def volume_group_of_pool(pool: str) -> str | None:
    """The volume group of one of Corral's logical pools, else None."""
    return pool[len(LVM_POOL_PREFIX) :] if pool.startswith(LVM_POOL_PREFIX) else None


def project_of_pool(pool: str) -> str | None:
    """The project a (directory) pool belongs to, or None for a pool Corral did not name."""
    if not pool.startswith(POOL_PREFIX):
        return None
    return pool[len(POOL_PREFIX) :].split(".", 1)[0]


def disk_volume(host: str) -> str:
    return f"{host}{DISK_SUFFIX}"


def seed_volume(host: str) -> str:
    return f"{host}{SEED_SUFFIX}"


def data_volume(host: str, disk: str, *, raw: bool = False) -> str:
    return f"{host}.{disk}{RAW_DATA_SUFFIX if raw else DISK_SUFFIX}"


def logical_volume(project: str, host: str, disk: str | None = None) -> str:
    """An LV name: ``PROJECT.HOST`` (root) or ``PROJECT.HOST.DISK``."""
    return f"{project}.{host}" + (f".{disk}" if disk else "")


def parse_volume(volume: str) -> tuple[str, str, str | None] | None:
    """``(host, kind, disk)`` of a volume in a project pool, kind ``disk`` (run copy),
    ``data`` (an extra disk named ``disk``) or ``seed``; None if not Corral's."""
    if volume.endswith(SEED_SUFFIX):
        return volume[: -len(SEED_SUFFIX)], "seed", None
    if volume.endswith(DISK_SUFFIX):
        stem = volume[: -len(DISK_SUFFIX)]
        host, dot, disk = stem.partition(".")
        return (host, "data", disk) if dot else (stem, "disk", None)
    if volume.endswith(RAW_DATA_SUFFIX):
        host, dot, disk = volume[: -len(RAW_DATA_SUFFIX)].partition(".")
        return (host, "data", disk) if dot and disk else None
    return None


def parse_logical_volume(volume: str) -> tuple[str, str, str, str | None] | None:
    """``(project, host, kind, disk)`` of an LV in Corral's logical pool, else None."""
    parts = volume.split(".")
    if len(parts) == 2:
        return parts[0], parts[1], "disk", None
    if len(parts) == 3:
        return parts[0], parts[1], "data", parts[2]
    return None


def console_log_volume(host: str) -> str:
    """The file (a volume of the seed's pool) the host's serial console logs to."""
    return f"{host}{CONSOLE_LOG_SUFFIX}"

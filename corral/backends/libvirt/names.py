"""How Corral names what it creates in libvirt.

Names begin with the project, so an administrator using ``virsh`` sees whose
they are: domains ``PROJECT-HOST``, networks ``PROJECT-SWITCH``, storage pools
``corral-PROJECT`` with volumes ``HOST.qcow2`` (run copy) and ``HOST-seed.iso``.
Ownership is never decided from a name alone, though: domains and networks
carry Corral metadata, and a volume is Corral's because it lives in the
project's pool.

Linux limits interface names to 15 characters, too few for ``PROJECT-SWITCH``,
so bridges are named ``crl-`` plus 8 hex digits of a digest of project and
switch: stable, and distinct in practice (2^32 values).
"""

from __future__ import annotations

import hashlib

POOL_PREFIX = "corral-"
DISK_SUFFIX = ".qcow2"
SEED_SUFFIX = "-seed.iso"


def domain_name(project: str, host: str) -> str:
    return f"{project}-{host}"


def network_name(project: str, switch: str) -> str:
    return f"{project}-{switch}"


def bridge_name(project: str, switch: str) -> str:
    digest = hashlib.sha256(f"{project}/{switch}".encode()).hexdigest()
    return f"crl-{digest[:8]}"


def pool_name(project: str) -> str:
    return f"{POOL_PREFIX}{project}"


def project_of_pool(pool: str) -> str | None:
    """The project a pool belongs to, or None for a pool Corral did not name."""
    return pool[len(POOL_PREFIX) :] if pool.startswith(POOL_PREFIX) else None


def disk_volume(host: str) -> str:
    return f"{host}{DISK_SUFFIX}"


def seed_volume(host: str) -> str:
    return f"{host}{SEED_SUFFIX}"


def parse_volume(volume: str) -> tuple[str, str] | None:
    """``(host, kind)`` of a volume name, kind ``disk`` or ``seed``; None if not Corral's."""
    if volume.endswith(SEED_SUFFIX):
        return volume[: -len(SEED_SUFFIX)], "seed"
    if volume.endswith(DISK_SUFFIX):
        return volume[: -len(DISK_SUFFIX)], "disk"
    return None


def console_log_path(domain: str) -> str:
    """Where libvirt writes the domain's serial console output (append off)."""
    return f"/var/log/libvirt/qemu/{domain}-console.log"

"""Helpers of the integration tests: the private site, names, libvirt facts, the CLI.

Fixtures live in ``conftest.py``; this module holds what tests import.
Every project name is unique (``it`` + 4 hex digits) and every switch gets a
subnet of its own from 10.240.0.0/16, so a run never collides with the demo
(10.231.x) or with another run.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from corral.backends.libvirt import storage
from corral.config import LOCAL_SERVICE_HOST, SiteConfig
from corral.images.registry import Template
from corral.ops import projects
from corral.ops.session import Session

URI = "qemu:///system"
REPO = Path(__file__).resolve().parents[2]
CORRAL = REPO / ".venv" / "bin" / "corral"


@dataclass(frozen=True)
class Site:
    """The session's private site: its config, the file it is written to, its scratch dir."""

    config: SiteConfig
    toml: Path
    root: Path

    def session(self) -> Session:
        return Session(self.config)


def site_toml(root: Path) -> str:
    return (
        "[defaults]\n"
        'virt_type = "qemu"\n'
        'memory = "96M"\n\n'
        "[paths]\n"
        f'templates = "{root / "templates"}"\n'
        f'state = "{root / "state.db"}"\n'
        f'runs = "{root / "runs"}"\n'
    )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileFacts:
    """What libvirt's DAC relabelling would change on a file: owner, group, mode,
    extended attributes (``trusted.libvirt.security.*``), the inode's change time
    (any chown, chmod or xattr write moves it, even when undone later) and its bytes."""

    uid: int
    gid: int
    mode: int
    xattrs: tuple[tuple[str, bytes], ...]
    ctime_ns: int
    mtime_ns: int
    sha256: str | None  # None for a directory


def file_facts(path: Path) -> FileFacts:
    info = path.lstat()
    xattrs = tuple(sorted((n, os.getxattr(path, n)) for n in os.listxattr(path)))
    return FileFacts(
        info.st_uid, info.st_gid, info.st_mode, xattrs, info.st_ctime_ns, info.st_mtime_ns,
        None if path.is_dir() else sha256(path),
    )


def template_facts(directory: Path) -> dict[str, FileFacts]:
    """Facts of a template directory and of every file in it, by path."""
    paths = [directory, *sorted(directory.iterdir())]
    return {str(p): file_facts(p) for p in paths}


def changed_facts(before: dict[str, FileFacts], after: dict[str, FileFacts]) -> dict[str, str]:
    """Path -> what differs, for a readable assertion message."""
    changes = {}
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old != new:
            changes[path] = f"{old} -> {new}"
    return changes


def project_name() -> str:
    return f"it{secrets.token_hex(2)}"


# --------------------------------------------------------------------------- libvirt facts


@dataclass(frozen=True)
class LibvirtObjects:
    """What libvirt holds for one project, by name."""

    domains: frozenset[str]
    networks: frozenset[str]
    pool: bool
    volumes: frozenset[str]

    @property
    def empty(self) -> bool:
        return not (self.domains or self.networks or self.pool or self.volumes)


def libvirt_objects(project: str) -> LibvirtObjects:
    """Every domain and network named ``PROJECT-*``, the pool ``corral-PROJECT`` and its volumes.

    Asked of libvirt directly (not through Corral), so a leftover that Corral
    would not recognise is found as well.
    """
    conn = libvirt.open(URI)
    try:
        prefix = f"{project}-"
        domains = frozenset(
            d.name() for d in conn.listAllDomains(0) if d.name().startswith(prefix)
        )
        networks = frozenset(
            n.name() for n in conn.listAllNetworks(0) if n.name().startswith(prefix)
        )
        pool = next(
            (p for p in conn.listAllStoragePools(0) if p.name() == f"corral-{project}"), None
        )
        volumes: frozenset[str] = frozenset()
        if pool is not None and pool.isActive():
            _refresh(pool)
            volumes = frozenset(pool.listVolumes())
        return LibvirtObjects(domains, networks, pool is not None, volumes)
    finally:
        conn.close()


def _refresh(pool: libvirt.virStoragePool, timeout: float = 30.0) -> None:
    """Rescan the pool's directory, so volumes libvirt was not told about count too.

    Libvirt refuses while a volume job runs, e.g. one a killed client started
    (its creation or upload continues in the daemon): wait for it.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            pool.refresh(0)
            return
        except libvirt.libvirtError as error:
            if "asynchronous jobs" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def boot_volumes(template: Template, service_host: str = LOCAL_SERVICE_HOST) -> frozenset[str]:
    """``service_host``'s pool copies of a direct-boot template's kernel and initrd,
    which the project's hosts boot from so that libvirt never relabels the template's own."""
    files = (("vmlinuz", template.kernel), ("initrd.img", template.initrd))
    return frozenset(
        storage.boot_volume_name(
            hashlib.sha256(Path(path).read_bytes()).hexdigest(), role, service_host
        )
        for role, path in files if path
    )


def expected_objects(
    project: str, hosts: list[str], switches: list[str], template: Template | None = None,
    *, booted: bool = True,
) -> LibvirtObjects:
    """Exactly what a built project of these hosts and switches, all on ``template``,
    consists of; ``booted``: each host has booted, so its console log is in the pool."""
    boot = boot_volumes(template) if template is not None and template.kind == "direct" else set()
    return LibvirtObjects(
        domains=frozenset(f"{project}-{h}" for h in hosts),
        networks=frozenset(f"{project}-{s}" for s in switches),
        pool=True,
        volumes=frozenset(v for h in hosts for v in (f"{h}.qcow2", f"{h}-seed.iso")) | boot
        | frozenset(f"{h}-console.log" for h in hosts if booted),
    )


def force_clean(project: str) -> None:
    """Last resort after ``remove``: drop whatever libvirt still holds of ``project``."""
    conn = libvirt.open(URI)
    try:
        prefix = f"{project}-"
        for domain in conn.listAllDomains(0):
            if domain.name().startswith(prefix):
                if domain.isActive():
                    domain.destroy()
                domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
        for network in conn.listAllNetworks(0):
            if network.name().startswith(prefix):
                if network.isActive():
                    network.destroy()
                network.undefine()
        for pool in conn.listAllStoragePools(0):
            if pool.name() == f"corral-{project}":
                if pool.isActive():
                    _refresh(pool)
                    for volume in pool.listAllVolumes(0):
                        volume.delete(0)
                    pool.destroy()
                pool.undefine()
    finally:
        conn.close()


def remove_project(site: Site, project: str) -> None:
    """Teardown: ``remove`` through the operations layer, then sweep what is left.

    A test that must prove ``remove`` leaves nothing checks that itself; here
    the point is only that nothing outlives the test session.
    """
    try:
        with site.session() as session:
            projects.remove(session, project)
    finally:
        if not libvirt_objects(project).empty:
            force_clean(project)


# --------------------------------------------------------------------------- project files


def node_superclass(memory: str = "96M") -> str:
    """The superclass every test host inherits: the tiny template, QEMU, console readiness.

    96 MiB is about the least the tiny template boots in: its Debian kernel
    stops silently after "Probing EDD" at 64 MiB.
    """
    return (
        "superclass node {\n"
        "    template tiny\n"
        "    qemu\n"
        f"    memory {memory}\n"
        "    vcpus 1\n"
        "    wait console 120\n"
        "}\n"
    )


def write_project(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- guests, CLI


def ping(address: str, attempts: int = 5) -> bool:
    """True when ``address`` answers one ICMP echo within a few tries."""
    for _ in range(attempts):
        done = subprocess.run(
            ["ping", "-c", "1", "-W", "2", address], capture_output=True, check=False
        )
        if done.returncode == 0:
            return True
        time.sleep(0.5)
    return False


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll ``condition`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def cli_env() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("CORRAL_CONFIG", None)
    return env


def run_corral(site: Site, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """The real CLI with this session's site config, no terminal, stdin closed."""
    return subprocess.run(
        [str(CORRAL), "--config", str(site.toml), *args],
        capture_output=True, text=True, timeout=timeout, env=cli_env(),
        stdin=subprocess.DEVNULL, check=False,
    )

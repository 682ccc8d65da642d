"""Shared fixtures for the integration tests on the real local libvirtd (QEMU, TCG).

What is expensive is shared: the tiny template is built once per test session
into a private template registry, and each module brings up its project once.
Everything lives under one world-readable scratch directory (QEMU runs as
``libvirt-qemu`` and must read the template and the run copies), every project
name is unique (``it`` + 4 hex digits) and every switch gets a subnet of its
own from 10.240.0.0/16, so a run never collides with the demo or with another
run. Whatever a test brings up is removed in teardown, also when it fails.
"""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral.config import SiteConfig, parse_site_config
from corral.images.registry import Template
from corral.ops import projects
from corral.ops.session import Session
from corral.ops.templates import build_template

URI = "qemu:///system"
REPO = Path(__file__).resolve().parents[2]
CORRAL = REPO / ".venv" / "bin" / "corral"
SCRATCH_PARENT = Path("/var/tmp")

sys.path.insert(0, str(Path(__file__).parent))


def _libvirt_or_skip() -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    try:
        import libvirt
    except ImportError:
        pytest.skip("libvirt-python is not installed")
    try:
        libvirt.open(URI).close()
    except libvirt.libvirtError as error:
        pytest.skip(f"libvirtd does not answer at {URI}: {error}")


@dataclass(frozen=True)
class Site:
    """The session's private site: its config, the file it is written to, its scratch dir."""

    config: SiteConfig
    toml: Path
    root: Path

    def session(self) -> Session:
        return Session(self.config)


def _site_toml(root: Path) -> str:
    return (
        "[defaults]\n"
        'virt_type = "qemu"\n'
        "memory = \"64M\"\n\n"
        "[paths]\n"
        f'templates = "{root / "templates"}"\n'
        f'state = "{root / "state.db"}"\n'
        f'runs = "{root / "runs"}"\n'
    )


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    """A site config whose templates, state database and run copies live in a scratch dir."""
    _libvirt_or_skip()
    root = Path(tempfile.mkdtemp(prefix="corral-it-", dir=SCRATCH_PARENT))
    for path in (root, root / "runs"):
        path.mkdir(exist_ok=True)
        path.chmod(0o755)
    toml = root / "corral.toml"
    toml.write_text(_site_toml(root))
    config = parse_site_config(toml.read_text(), toml)
    yield Site(config, toml, root)
    shutil.rmtree(root, ignore_errors=True)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class BuiltTemplate:
    template: Template
    digests: dict[str, str]  # file path -> sha256 right after the build


@pytest.fixture(scope="session")
def tiny(site: Site) -> Iterator[BuiltTemplate]:
    """The tiny template, built once per session; at the end its bytes must be unchanged."""
    with site.session() as session:
        template = build_template(session, "tiny")
        (site.root / "templates").chmod(0o755)
        files = [p for p in (template.disk, template.kernel, template.initrd) if p]
        built = BuiltTemplate(template, {str(p): sha256(p) for p in files})
    yield built
    with site.session() as session:
        session.registry.verify("tiny")
    changed = [p for p, digest in built.digests.items() if sha256(Path(p)) != digest]
    assert not changed, f"template files changed during the tests: {changed}"


# --------------------------------------------------------------------------- names


_used_subnets: set[int] = set()


@pytest.fixture(scope="session")
def subnets() -> Callable[[], int]:
    """Hand out distinct third octets of 10.240.X.0/24 (random start per session)."""
    rng = random.Random(secrets.randbits(32))
    free = [n for n in range(2, 250) if n not in _used_subnets]
    rng.shuffle(free)

    def take() -> int:
        octet = free.pop()
        _used_subnets.add(octet)
        return octet

    return take


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

    Asked of libvirt directly (not through Corral), so a leftover Corral no
    longer recognises is found as well.
    """
    import libvirt

    conn = libvirt.open(URI)
    try:
        prefix = f"{project}-"
        domains = frozenset(
            d.name() for d in conn.listAllDomains(0) if d.name().startswith(prefix)
        )
        networks = frozenset(
            n.name() for n in conn.listAllNetworks(0) if n.name().startswith(prefix)
        )
        pool = None
        for candidate in conn.listAllStoragePools(0):
            if candidate.name() == f"corral-{project}":
                pool = candidate
        volumes: frozenset[str] = frozenset()
        if pool is not None and pool.isActive():
            pool.refresh(0)
            volumes = frozenset(pool.listVolumes())
        return LibvirtObjects(domains, networks, pool is not None, volumes)
    finally:
        conn.close()


def expected_objects(project: str, hosts: list[str], switches: list[str]) -> LibvirtObjects:
    return LibvirtObjects(
        domains=frozenset(f"{project}-{h}" for h in hosts),
        networks=frozenset(f"{project}-{s}" for s in switches),
        pool=True,
        volumes=frozenset(v for h in hosts for v in (f"{h}.qcow2", f"{h}-seed.iso")),
    )


def force_clean(project: str) -> None:
    """Last resort after ``remove``: drop whatever libvirt still holds of ``project``."""
    import libvirt

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
                    pool.refresh(0)
                    for volume in pool.listAllVolumes(0):
                        volume.delete(0)
                    pool.destroy()
                pool.undefine()
    finally:
        conn.close()


def remove_project(site: Site, project: str) -> None:
    """Teardown: ``remove`` through the operations layer, then sweep what is left.

    A test that must prove ``remove`` leaves nothing checks that itself; here
    the point is that nothing outlives the test session.
    """
    try:
        with site.session() as session:
            projects.remove(session, project)
    finally:
        if not libvirt_objects(project).empty:
            force_clean(project)


# --------------------------------------------------------------------------- project files


def node_superclass(memory: str = "96M", maxmem: str | None = None) -> str:
    lines = ["superclass node {", "    template tiny", "    qemu", f"    memory {memory}"]
    if maxmem:
        lines.append(f"    maxmem {maxmem}")
    lines += ["    vcpus 1", "    wait console 120", "}"]
    return "\n".join(lines) + "\n"


def write_project(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- guest facts


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


def run_corral(site: Site, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """The real CLI, with this session's site config, no terminal."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("CORRAL_CONFIG", None)
    return subprocess.run(
        [str(CORRAL), "--config", str(site.toml), *args],
        capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL,
        check=False,
    )

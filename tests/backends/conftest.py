"""Fixtures for backend tests: a fresh libvirt test driver per test.

``libvirt.open('test:///default')`` is in-process and every open gives a new,
independent state (one domain ``test``, one network ``default``, one pool
``default-pool``), so each backend built here starts clean.
"""

from __future__ import annotations

import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.backends.libvirt.backend import LibvirtBackend

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def backend() -> LibvirtBackend:
    b = LibvirtBackend("local", "test:///default", runs_dir="/var/lib/corral/runs")
    yield b
    b.close()


# ---------------------------------------------------------------- the real local libvirtd

REAL_URI = "qemu:///system"
SCRATCH = Path("/var/tmp/corral-backend-tests")


@pytest.fixture
def project() -> str:
    return f"xv{secrets.token_hex(3)}"


@pytest.fixture
def scratch(project: str) -> Iterator[Path]:
    """A directory QEMU's user can traverse (pytest's tmp_path is 0700)."""
    path = SCRATCH / project
    path.mkdir(parents=True, mode=0o755)
    SCRATCH.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def real(project: str, scratch: Path) -> Iterator[LibvirtBackend]:
    """A backend on the real local libvirtd; what the test's project left is removed."""
    backend = LibvirtBackend("local", REAL_URI, runs_dir=str(scratch / "runs"))
    yield backend
    observed = backend.observe(project)
    for domain in observed.domains:
        backend.undefine(domain.name)
    for network in observed.networks:
        backend.remove_network(network.name)
    backend.remove_pool(project)
    backend.close()

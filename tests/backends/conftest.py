"""Fixtures for backend tests: a fresh libvirt test driver per test.

``libvirt.open('test:///default')`` is in-process and every open gives a new,
independent state (one domain ``test``, one network ``default``, one pool
``default-pool``), so each backend built here starts clean.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from corral.backends.libvirt.backend import LibvirtBackend

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def backend() -> LibvirtBackend:
    b = LibvirtBackend("local", "test:///default", runs_dir="/var/lib/corral/runs")
    yield b
    b.close()

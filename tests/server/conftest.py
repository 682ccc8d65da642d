"""The server on libvirt's in-process test driver, with a cast of users.

``test:///default`` keeps its state while any connection to it is open, and
the server opens (and closes) connections per request and per job, so the
fixture holds one open for the whole test. The cast: alice owns project
``lab`` (brought up through the API), carol may read it, dave may change
it, bob has nothing to do with it, root is an administrator, and ``metrics``
is a metrics-only token of alice's.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_support import CLIENT, LAB, Cast, wait_job, write_site

from corral.config import SiteConfig
from corral.ops.access import Access, share_project
from corral.ops.identity import Scope
from corral.ops.session import Session
from corral.ops.tokens import create_token
from corral.ops.users import add_user
from corral.server.app import create_app
from corral.state.jobs import Jobs


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return write_site(tmp_path)


@pytest.fixture
def admin_session(site: SiteConfig, tmp_path: Path) -> Iterator[Session]:
    """The site administrator's session, with the template registered and the test
    driver's state held open."""
    session = Session(site)
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
    session.registry.add("base", base)
    session.backend("local").host_info()  # keeps test:///default's state alive
    yield session
    session.close()


@pytest.fixture
def cast(admin_session: Session) -> Cast:
    who = admin_session.identity
    tokens: dict[str, str] = {}
    ids: dict[str, int] = {}
    for role, name, admin in (("owner", "alice", False), ("other", "bob", False),
                              ("reader", "carol", False), ("writer", "dave", False),
                              ("admin", "root", True)):
        added = add_user(admin_session, who, name, admin=admin)
        tokens[role], ids[role] = added.token.token, added.token.record.id
    metrics = create_token(admin_session, who, "alice", "prometheus", Scope.METRICS)
    tokens["metrics"], ids["metrics"] = metrics.token, metrics.record.id
    return Cast(tokens, ids)


@pytest.fixture
def app(site: SiteConfig, admin_session: Session) -> Iterator[FastAPI]:
    """The server's app; afterwards its jobs are waited for. A job still running
    when a test ends (one whose client went away) holds a connection to
    ``test:///default``, which would keep this test's domains alive into the
    next test's driver state."""
    made = create_app(site)
    yield made
    jobs = Jobs(admin_session.store)
    deadline = time.monotonic() + 120
    while any(not j.finished for j in jobs.newest(limit=1000)):
        assert time.monotonic() < deadline, "a job of the test did not end within 120 s"
        time.sleep(0.1)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, client=CLIENT) as test_client:
        yield test_client


@pytest.fixture
def lab(client: TestClient, cast: Cast, admin_session: Session) -> dict[str, Any]:
    """Project lab, brought up by alice through the API and shared with carol (read)
    and dave (write); the finished job."""
    accepted = client.post("/api/v1/projects/up", headers=cast.headers("owner"),
                           json={"text": LAB, "name": "lab.corral"})
    assert accepted.status_code == 202, accepted.text
    job = wait_job(client, accepted.json()["href"], cast.headers("owner"))
    assert job["state"] == "done", job.get("error")
    owner = admin_session.identity
    share_project(admin_session, owner, "lab", "carol", Access.READ)
    share_project(admin_session, owner, "lab", "dave", Access.WRITE)
    return job


"""Several servers on one state database, SQLite and PostgreSQL: they share users,
jobs, the project lock and the audit log, and a server that starts, or beats,
marks interrupted only the jobs of servers that are gone, never a live one's.

Two apps in this process are two servers (each its own engine, job runner
and instance); the last test runs ``corral server`` as real processes and
kills one of them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from server_support import CLIENT, LAB, Cast, wait_job, write_site

from corral.config import SiteConfig
from corral.ops.session import Session
from corral.server.app import create_app
from corral.server.jobs import Liveness
from corral.state.jobs import Jobs
from corral.state.lock import Claimant
from corral.state.store import StateStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path: Path, state_url: str) -> SiteConfig:
    """The test site, its state database SQLite and then PostgreSQL."""
    return write_site(tmp_path, state_url=state_url)


@contextmanager
def _server(site: SiteConfig, liveness: Liveness | None = None) -> Iterator[TestClient]:
    """One more server on the site's database, started (its lifespan run)."""
    with TestClient(create_app(site, liveness=liveness), client=CLIENT) as client:
        yield client


@contextmanager
def _lock_held(site: SiteConfig, project: str) -> Iterator[tuple[StateStore, Claimant]]:
    """Project ``project``'s lock, held by this test process for the block (or until
    released with the claimant's token)."""
    with StateStore(site.state_location()) as store:
        holder = Claimant.this_process()
        assert store.acquire_lock(project, "up", holder) is None
        try:
            yield store, holder
        finally:
            store.release_lock(project, holder.token)


def _wait_until_waiting(store: StateStore, job_id: str, timeout_s: float = 30) -> None:
    """Until job ``job_id`` runs and waits for the project lock."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any("is locked by" in e.message for e in Jobs(store).events(job_id)):
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never waited for the project lock")


def _state(store: StateStore, job_id: str) -> str:
    found = Jobs(store).get(job_id)
    assert found is not None
    return found.state


def test_two_servers_share_jobs_the_lock_and_the_audit_log(
    site: SiteConfig, cast: Cast, admin_session: Session
) -> None:
    with _server(site) as first, _server(site) as second:
        up = first.post("/api/v1/projects/up", headers=cast.headers("owner"),
                        json={"text": LAB, "name": "lab.corral"})
        assert up.status_code == 202
        assert wait_job(second, up.json()["href"], cast.headers("owner"))["state"] == "done"

        def submit(client: TestClient, action: str) -> str:
            accepted = client.post(f"/api/v1/projects/lab/{action}",
                                   headers=cast.headers("owner"), json={})
            assert accepted.status_code == 202, accepted.text
            return str(accepted.json()["href"])

        # Both servers at once: every job waits its turn for the one project lock.
        orders = [(client, action) for client in (first, second)
                  for action in ("stop", "start", "stop")]
        with ThreadPoolExecutor(len(orders)) as pool:
            hrefs = list(pool.map(lambda order: submit(*order), orders))
        ended = [wait_job(second if n % 2 else first, href, cast.headers("owner"))
                 for n, href in enumerate(hrefs)]
        assert [job["state"] for job in ended] == ["done"] * len(orders)
        for reader in (first, second):
            listed = reader.get("/api/v1/jobs", headers=cast.headers("owner")).json()
            assert {job["id"] for job in ended} <= {job["id"] for job in listed}

        audit = first.get("/api/v1/audit", headers=cast.headers("admin"),
                          params={"user": "alice", "limit": 1000}).json()
        by_job = {entry["detail"].split(":")[0] for entry in audit if entry["result"] == "ok"}
        assert {f"job {job['id']}" for job in [*ended, up.json()]} <= by_job
        assert len({entry["id"] for entry in audit}) == len(audit)


def test_a_server_starting_leaves_a_live_servers_running_job_alone(
    site: SiteConfig, cast: Cast, admin_session: Session
) -> None:
    with _server(site) as first:
        with _lock_held(site, "lab") as (store, _holder):
            accepted = first.post("/api/v1/projects/up", headers=cast.headers("owner"),
                                  json={"text": LAB, "name": "lab.corral"})
            _wait_until_waiting(store, accepted.json()["id"])
            with _server(site) as second:  # starts while the first server's job runs
                assert _state(store, accepted.json()["id"]) == "running"
                assert second.get(accepted.json()["href"], headers=cast.headers(
                    "owner")).json()["state"] == "running"
        # The lock is free: the job goes on to its end, on the first server.
        job = wait_job(first, accepted.json()["href"], cast.headers("owner"))
    assert job["state"] == "done"


def test_a_live_server_interrupts_the_jobs_of_a_server_that_stopped_beating(
    site: SiteConfig, cast: Cast, admin_session: Session
) -> None:
    """Two servers of another machine, one still beating and one not, each with a job
    recorded after this server started: only its heartbeat can find the dead one."""
    stop = threading.Event()
    with StateStore(site.state_location()) as store, _server(
        site, Liveness(beat_s=0.05, stale_after_s=2.0)
    ):
        jobs = Jobs(store)
        for instance, job in (("far-dead", "d" * 32), ("far-live", "e" * 32)):
            jobs.beat(instance, "elsewhere", 1, "")
            jobs.add(job, "alice", "up", "lab", "elsewhere", instance)
            jobs.start(job)

        def keep_beating() -> None:  # the live server on the other machine
            while not stop.wait(0.05):
                jobs.beat("far-live", "elsewhere", 1, "")

        beating = threading.Thread(target=keep_beating)
        beating.start()
        try:
            deadline = time.monotonic() + 15
            while _state(store, "d" * 32) == "running" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _state(store, "d" * 32) == "interrupted"
            time.sleep(2.2)  # past another stale window: the beating one stays
            assert _state(store, "e" * 32) == "running"
            assert [s.instance for s in jobs.instances("elsewhere")] == ["far-live"]
        finally:
            stop.set()
            beating.join()


# -- real processes ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(config: Path, port: int) -> subprocess.Popen[str]:
    """``corral server`` on ``port``, once it listens."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "corral", "--config", str(config), "server",
         "--listen", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"corral server exited: {process.communicate()[1]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("corral server did not listen in time")


def _up(port: int, cast: Cast) -> dict[str, Any]:
    accepted = httpx.post(f"http://127.0.0.1:{port}/api/v1/projects/up",
                          headers=cast.headers("owner"),
                          json={"text": LAB, "name": "lab.corral"}, timeout=30)
    assert accepted.status_code == 202, accepted.text
    return dict(accepted.json())


def test_a_killed_server_process_has_its_jobs_interrupted_and_only_its_own(
    site: SiteConfig, cast: Cast, admin_session: Session
) -> None:
    config = site.source
    assert config is not None
    doomed_port, surviving_port = _free_port(), _free_port()
    with _lock_held(site, "lab") as (store, holder):
        doomed = _serve(config, doomed_port)
        surviving: subprocess.Popen[str] | None = None
        try:
            lost = _up(doomed_port, cast)["id"]
            _wait_until_waiting(store, lost)
            surviving = _serve(config, surviving_port)
            assert _state(store, lost) == "running"  # the second server left it alone
            kept = _up(surviving_port, cast)["id"]
            _wait_until_waiting(store, kept)
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=30)
            with _server(site):  # a server of this machine starts: the dead pid is seen
                assert _state(store, lost) == "interrupted"
                assert _state(store, kept) == "running"
            store.release_lock("lab", holder.token)
            deadline = time.monotonic() + 60
            while _state(store, kept) == "running" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _state(store, kept) == "done"  # the surviving server finished it
        finally:
            for process in (doomed, surviving):
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=30)

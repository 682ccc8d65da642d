"""Jobs: an ``up`` accepted at once, polled to its end, its events streamed as SSE,
and jobs a stopped server left running marked interrupted by the next one; each
on a SQLite and on a PostgreSQL state database."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_support import CLIENT, LAB, Cast, wait_job, write_site

from corral.config import SiteConfig
from corral.ops.session import Session
from corral.ops.users import change_quota
from corral.server.app import create_app
from corral.state.jobs import Jobs
from corral.state.lock import Claimant
from corral.state.store import StateStore


@pytest.fixture
def site(tmp_path: Path, state_url: str) -> SiteConfig:
    """The test site, its state database SQLite and then PostgreSQL."""
    return write_site(tmp_path, state_url=state_url)


def _sse(text: str) -> list[dict[str, Any]]:
    """The events of a server-sent event stream: id, event and parsed data."""
    events = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            fields[key] = json.loads(value) if key == "data" else value
        events.append(fields)
    return events


def test_up_is_a_job_with_progress_events_and_the_typed_result(
    client: TestClient, cast: Cast, lab: dict[str, Any]
) -> None:
    assert lab["operation"] == "up" and lab["owner"] == "alice" and lab["outcome"] == "ok"
    assert lab["result"]["project"] == "lab"
    assert sorted(lab["result"]["started"]) == ["app", "web"]
    kinds = [a["kind"] for a in lab["result"]["actions"]]
    assert kinds.count("create-host") == 2 and "create-switch" in kinds
    progress = [e for e in lab["events"] if e["kind"] == "progress"]
    assert [e["seq"] for e in lab["events"]] == list(range(1, len(lab["events"]) + 1))
    built = [e for e in progress if e["data"]["description"] == "building hosts"]
    assert [e["data"]["done"] for e in built] == [0, 1, 2]
    assert all(e["data"]["total"] == 2 for e in built)

    stream = client.get(f"/api/v1/jobs/{lab['id']}/events", headers=cast.headers("owner"))
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = _sse(stream.text)
    assert events[-1]["event"] == "end" and events[-1]["data"]["state"] == "done"
    assert [int(e["id"]) for e in events[:-1]] == [e["seq"] for e in lab["events"]]
    assert [e["data"]["message"] for e in events[:-1]] == [e["message"] for e in lab["events"]]

    resumed = client.get(f"/api/v1/jobs/{lab['id']}/events",
                         headers={**cast.headers("owner"), "Last-Event-ID": "5"})
    assert [int(e["id"]) for e in _sse(resumed.text)[:-1]] == list(
        range(6, len(lab["events"]) + 1))


def test_the_event_stream_follows_a_running_job_to_its_end(
    client: TestClient, cast: Cast, lab: dict[str, Any]
) -> None:
    accepted = client.post("/api/v1/projects/lab/stop", headers=cast.headers("writer"),
                           json={"timeout_s": 0})
    assert accepted.status_code == 202 and accepted.json()["state"] == "queued"
    assert accepted.headers["location"] == accepted.json()["href"]
    with client.stream("GET", accepted.json()["href"] + "/events",
                       headers=cast.headers("writer")) as stream:
        text = "".join(stream.iter_text())
    events = _sse(text)
    assert events[-1]["event"] == "end"
    final = events[-1]["data"]
    assert final["state"] == "done" and final["owner"] == "dave"
    assert sorted((h["host"], h["outcome"]) for h in final["result"]["hosts"]) == [
        ("app", "clean"), ("web", "clean")]  # the test driver shuts down at once
    assert [e["event"] for e in events[:-1]] == ["progress"]  # "stopping hosts", 2


def test_the_event_stream_waits_for_a_job_held_by_the_project_lock(
    client: TestClient, cast: Cast, lab: dict[str, Any], site: SiteConfig
) -> None:
    with StateStore(site.state_location()) as store:
        holder = Claimant.this_process()
        assert store.acquire_lock("lab", "up", holder) is None
        accepted = client.post("/api/v1/projects/upgrade", headers=cast.headers("owner"),
                               json={"text": LAB, "name": "lab.corral"})
        assert accepted.status_code == 202
        job_id = accepted.json()["id"]
        released: list[float] = []

        def release_once_waiting() -> None:
            jobs = Jobs(store)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if any("is locked by" in e.message for e in jobs.events(job_id)):
                    break
                time.sleep(0.05)
            released.append(time.monotonic())
            store.release_lock("lab", holder.token)

        releaser = threading.Thread(target=release_once_waiting)
        releaser.start()
        began = time.monotonic()
        stream = client.get(f"/api/v1/jobs/{job_id}/events", headers=cast.headers("owner"))
        releaser.join()
    events = _sse(stream.text)
    assert released and began < released[0]
    waiting = [e for e in events if e.get("event") == "note"]
    assert "project 'lab' is locked by" in waiting[0]["data"]["message"]
    assert events[-1]["event"] == "end" and events[-1]["data"]["state"] == "done"
    assert events[-1]["data"]["result"]["changed"] is False


def test_a_job_that_fails_says_why_and_others_do_not_see_it(
    client: TestClient, cast: Cast, lab: dict[str, Any]
) -> None:
    before = client.get("/api/v1/jobs", headers=cast.headers("owner")).json()
    invalid = client.post("/api/v1/projects/upgrade", headers=cast.headers("owner"),
                          json={"text": LAB + "\nhost broken {\n    memory lots\n}\n",
                                "name": "lab.corral"})
    assert invalid.status_code == 422  # refused as it loads: never a job
    assert invalid.json()["exit_code"] == 1
    assert [(d["file"], d["line"]) for d in invalid.json()["diagnostics"]] == [
        ("lab.corral", LAB.count("\n") + 3)]
    assert client.get("/api/v1/jobs", headers=cast.headers("owner")).json() == before
    stopped = client.post("/api/v1/projects/lab/stop", headers=cast.headers("owner"),
                          json={"hosts": ["nohost"]})
    assert stopped.status_code == 202
    job = wait_job(client, stopped.json()["href"], cast.headers("owner"))
    assert job["state"] == "failed" and job["outcome"] == "not_found"
    assert job["error"]["exit_code"] == 3 and "nohost" in job["error"]["error"]
    for role in ("other", "reader"):
        hidden = client.get(stopped.json()["href"], headers=cast.headers(role))
        assert hidden.status_code == 404
        assert hidden.json()["error"] == f"job '{job['id']}' not found"
    assert client.get("/api/v1/jobs/nonesuch", headers=cast.headers("owner")).json()[
        "error"] == "job 'nonesuch' not found"
    mine = client.get("/api/v1/jobs", headers=cast.headers("owner")).json()
    assert {j["id"] for j in mine} >= {job["id"], lab["id"]}
    assert client.get("/api/v1/jobs", headers=cast.headers("other")).json() == []
    everyone = client.get("/api/v1/jobs", headers=cast.headers("admin")).json()
    assert job["id"] in {j["id"] for j in everyone}


def test_jobs_left_running_are_interrupted_when_the_server_starts_again(
    site: SiteConfig, cast: Cast, admin_session: object
) -> None:
    with StateStore(site.state_location()) as store:
        jobs = Jobs(store)
        here = socket.gethostname()
        jobs.add("a" * 32, "alice", "up", "lab", here, "old-process")
        jobs.start("a" * 32)
        jobs.add("b" * 32, "alice", "remove", "lab", here, "old-process")
        jobs.add("c" * 32, "alice", "up", "lab", "elsewhere", "other-machine")
        jobs.start("c" * 32)
        jobs.add("d" * 32, "alice", "up", "lab", here, "old-process")
        jobs.finish("d" * 32, "done", "ok", {"project": "lab"}, None)
    app = create_app(site)
    with TestClient(app, client=CLIENT) as client:
        def state(job_id: str) -> str:
            answer = client.get(f"/api/v1/jobs/{job_id}", headers=cast.headers("owner"))
            return str(answer.json()["state"])

        assert state("a" * 32) == "interrupted"
        assert state("b" * 32) == "interrupted"
        assert state("c" * 32) == "running"  # another machine's server runs it
        assert state("d" * 32) == "done"
        stream = client.get(f"/api/v1/jobs/{'a' * 32}/events", headers=cast.headers("owner"))
        assert _sse(stream.text)[-1]["data"]["state"] == "interrupted"


def test_a_project_over_the_callers_quota_is_refused_before_any_job(
    client: TestClient, cast: Cast, admin_session: Session
) -> None:
    change_quota(admin_session, admin_session.identity, "bob", {"max_vms": 1})
    refused = client.post("/api/v1/projects/up", headers=cast.headers("other"),
                          json={"text": LAB.replace("project lab", "project bobs"),
                                "name": "bobs.corral"})
    assert refused.status_code == 403, refused.text
    assert "VMs 2 of 1 allowed, 1 over" in refused.json()["error"]
    assert Jobs(admin_session.require_store()).newest() == []
    entries = client.get("/api/v1/audit", headers=cast.headers("admin")).json()
    assert any(e["action"] == "up" and e["target"] == "bobs" and e["result"] == "refused"
               for e in entries)


def test_a_writer_is_refused_a_change_over_the_owners_quota_before_any_job(
    client: TestClient, cast: Cast, admin_session: Session, lab: dict[str, Any]
) -> None:
    """lab counts against alice, its owner: dave, who may change it and has no quota,
    cannot grow it past hers."""
    change_quota(admin_session, admin_session.identity, "alice", {"max_vms": 2})
    before = len(Jobs(admin_session.require_store()).newest())
    refused = client.post("/api/v1/projects/upgrade", headers=cast.headers("writer"),
                          json={"text": LAB + "host db {\n    superclass node\n}\n",
                                "name": "lab.corral"})
    assert refused.status_code == 403, refused.text
    assert "bring user 'alice' over their quota: VMs 3 of 2 allowed" in refused.json()["error"]
    assert len(Jobs(admin_session.require_store()).newest()) == before


def test_a_template_build_for_a_projects_host_reads_the_sent_project(
    client: TestClient, cast: Cast
) -> None:
    """``--from-project`` through the server: the project travels as text, and the
    job refuses a host it does not have before building anything."""
    admin = cast.headers("admin")
    half = client.post("/api/v1/templates/build", headers=admin,
                       json={"name": "debian", "host": "web"})
    assert half.status_code == 400
    assert half.json()["error"] == "give both project and host, or neither"
    sent = client.post("/api/v1/templates/build", headers=admin, json={
        "name": "debian", "host": "db", "project": {"text": LAB, "name": "lab.corral"}})
    assert sent.status_code == 202
    job = wait_job(client, sent.json()["href"], admin)
    assert job["state"] == "failed" and job["error"]["exit_code"] == 3
    assert job["error"]["error"] == "lab.corral: project 'lab' has no host 'db'"
    elsewhere = client.post("/api/v1/templates/build", headers=admin, json={"name": "alpine"})
    failed = wait_job(client, elsewhere.json()["href"], admin)
    assert "needs the apk installer" in failed["error"]["error"]


def test_a_rootfs_build_is_checked_against_the_host_and_its_size(
    client: TestClient, cast: Cast
) -> None:
    """``rootfs`` through the server: refused with a size, and for a qemu host."""
    admin = cast.headers("admin")
    sized = client.post("/api/v1/templates/build", headers=admin, json={
        "name": "debian", "rootfs": True, "size": "2G"})
    job = wait_job(client, sized.json()["href"], admin)
    assert job["state"] == "failed" and job["error"]["exit_code"] == 7
    assert job["error"]["error"].startswith("--size is for a VM's root disk")
    vm = client.post("/api/v1/templates/build", headers=admin, json={
        "name": "debian", "rootfs": True, "host": "web",
        "project": {"text": LAB, "name": "lab.corral"}})
    failed = wait_job(client, vm.json()["href"], admin)
    assert failed["error"]["error"] == (
        "lab.corral: host web is a qemu host; a rootfs template is for lxc hosts")

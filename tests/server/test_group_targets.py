"""Groups through the server: ``status`` cut to a group, ``PROJECT.@GROUP`` in the
vm routes and batch jobs, with the project's access (a hidden project's groups
are not found), and the CLI through a server printing what it prints locally."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from remote_support import Sides, live_server
from server_support import LAB, Cast, wait_job

from corral.ops.access import Access, share_project
from corral.ops.session import Session

GROUPED = LAB + "group both { members web app }\ngroup one { members web }\n"


@pytest.fixture
def grouped(client: TestClient, cast: Cast, admin_session: Session) -> dict[str, Any]:
    """Project lab with its groups, up by alice, read by carol, changed by dave."""
    accepted = client.post("/api/v1/projects/up", headers=cast.headers("owner"),
                           json={"text": GROUPED, "name": "lab.corral"})
    assert accepted.status_code == 202, accepted.text
    job = wait_job(client, accepted.json()["href"], cast.headers("owner"))
    assert job["state"] == "done", job
    share_project(admin_session, admin_session.identity, "lab", "carol", Access.READ)
    share_project(admin_session, admin_session.identity, "lab", "dave", Access.WRITE)
    return job


def _states(client: TestClient, cast: Cast) -> dict[str, str]:
    answer = client.get("/api/v1/projects/lab/status", headers=cast.headers("owner"),
                        params={"timeout_s": 5})
    return {r["host"]: r["state"] for r in answer.json()["rows"]}


def test_status_of_a_group(client: TestClient, cast: Cast, grouped: dict[str, Any]) -> None:
    reader = cast.headers("reader")
    for path, params in (("/api/v1/projects/lab/status", {"group": "one"}),
                         ("/api/v1/status", {"project": "lab", "group": "one"})):
        answer = client.get(path, params=params, headers=reader)
        assert answer.status_code == 200, answer.text
        assert [r["host"] for r in answer.json()["rows"]] == ["web"]
    unknown = client.get("/api/v1/projects/lab/status", params={"group": "none"},
                         headers=reader)
    assert unknown.status_code == 404
    assert "project 'lab' has no group 'none'" in unknown.json()["error"]
    alone = client.get("/api/v1/status", params={"group": "one"}, headers=reader)
    assert alone.status_code == 400
    hidden = client.get("/api/v1/projects/lab/status", params={"group": "one"},
                        headers=cast.headers("other"))
    missing = client.get("/api/v1/projects/nolab/status", params={"group": "one"},
                         headers=cast.headers("other"))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"].replace("lab", "X") == missing.json()["error"].replace(
        "nolab", "X")


def test_a_verbs_route_takes_a_group(client: TestClient, cast: Cast,
                                     grouped: dict[str, Any]) -> None:
    answer = client.post("/api/v1/vms/lab.@both/pause", headers=cast.headers("writer"))
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert sorted(d["target"] for d in data["done"]) == ["lab.app", "lab.web"]
    assert data["partial"] is False
    assert _states(client, cast) == {"app": "paused", "web": "paused"}
    client.post("/api/v1/vms/lab.@both/resume", headers=cast.headers("writer"))
    memory = client.post("/api/v1/vms/lab.@one/memory", json={"memory": "192M"},
                         headers=cast.headers("writer"))
    assert [(d["target"], d["outcome"]) for d in memory.json()["done"]] == [
        ("lab.web", "192 MiB")]
    assert client.post("/api/v1/vms/lab.@both/pause",
                       headers=cast.headers("reader")).status_code == 403
    hidden = client.post("/api/v1/vms/lab.@both/pause", headers=cast.headers("other"))
    assert hidden.status_code == 404
    assert hidden.json()["error"] == "project 'lab' not found"
    unknown = client.post("/api/v1/vms/lab.@none/pause", headers=cast.headers("writer"))
    assert unknown.status_code == 404
    assert "project 'lab' has no group 'none'" in unknown.json()["error"]
    one_vm = client.get("/api/v1/vms/lab.@both/xml", headers=cast.headers("reader"))
    assert one_vm.status_code == 400
    assert _states(client, cast) == {"app": "running", "web": "running"}


def test_batch_jobs_take_a_group(client: TestClient, cast: Cast,
                                 grouped: dict[str, Any]) -> None:
    writer = cast.headers("writer")
    for path, body in (("/api/v1/vms/batch/vcpus", {"targets": ["lab.@both"], "count": 1}),
                       ("/api/v1/vms/batch/memory", {"targets": ["lab.@both"],
                                                     "memory": "160M"}),
                       ("/api/v1/vms/batch/shutdown", {"targets": ["lab.@one"],
                                                       "timeout_s": 0})):
        accepted = client.post(path, json=body, headers=writer)
        assert accepted.status_code == 202, (path, accepted.text)
        job = wait_job(client, accepted.json()["href"], writer)
        assert job["state"] == "done", job
        targets = sorted(d["target"] for d in job["result"]["done"])
        assert targets == (["lab.web"] if "shutdown" in path else ["lab.app", "lab.web"])
    assert _states(client, cast) == {"app": "running", "web": "shutoff"}
    refused = client.post("/api/v1/vms/batch/memory", headers=cast.headers("reader"),
                          json={"targets": ["lab.@both"], "memory": "160M"})
    assert refused.status_code == 403


@pytest.fixture
def sides(app: FastAPI, admin_session: Session) -> Iterator[Sides]:
    config = admin_session.site.source
    assert config is not None
    with live_server(app) as url:
        yield Sides(config, url)


def test_the_cli_through_a_server_agrees(sides: Sides, cast: Cast, tmp_path: Path) -> None:
    path = tmp_path / "lab.corral"
    path.write_text(GROUPED)
    assert sides.local("up", str(path)).code == 0
    for args in (["status", "-p", "lab", "-g", "one", "--json"], ["status", "-g", "one"],
                 ["status", "-p", "lab", "-g", "none"], ["vm", "pause", "lab.@none"],
                 ["vm", "describe", "lab.@both"]):
        local = sides.local(*args).masked()
        remote = sides.remote(cast.tokens["admin"], *args).masked()
        assert remote == local, args
    for args in (["vm", "pause", "lab.@both"], ["vm", "resume", "lab.@both"],
                 ["vm", "mem-set", "lab.@one", "192M"], ["vm", "vcpu-set", "lab.@both", "1"]):
        here = sides.local(*args)
        there = sides.remote(cast.tokens["admin"], *args)
        assert here.code == there.code == 0, (args, here, there)
        # VMs report in the order they finish.
        assert sorted(here.out.splitlines()) == sorted(there.out.splitlines()), args

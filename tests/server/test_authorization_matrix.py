"""Every route of the API, as every kind of caller: the status each one gets.

The routes come from the app's own route table, so a route added later
without an expectation here fails :func:`test_every_route_has_expectations`,
and one whose answers change fails the walk. The cast (conftest): alice owns
``lab``, carol reads it, dave writes it, bob has nothing to do with it, root
is an administrator, and ``metrics`` is a metrics-only token of alice's.
Each request that is let through really runs (on libvirt's test driver);
jobs are waited for before the next request, so every answer is decided.
Websocket routes are walked too: a refusal is the status of the answer that
refuses the handshake, an opened websocket 101.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libvirt
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient
from server_support import LAB, ROLES, Cast, wait_job
from starlette.testclient import WebSocketDenialResponse

from corral.ops import projects
from corral.ops.access import Access, share_project
from corral.ops.identity import Identity, Scope
from corral.ops.session import Session
from corral.ops.tokens import create_token
from corral.ops.users import add_user
from corral.server.context import caller
from corral.server.portal.guard import PortalRoute

# Expected status per role; "*" is every full-scope user (other .. admin).
Expect = dict[str, int]


def everyone(status: int) -> Expect:
    return {"other": status, "reader": status, "writer": status, "owner": status,
            "admin": status}


def reading(status: int = 200) -> Expect:
    return {"other": 404, "reader": status, "writer": status, "owner": status, "admin": status}


def writing(status: int = 200) -> Expect:
    return {"other": 404, "reader": 403, "writer": status, "owner": status, "admin": status}


def admins(status: int = 200) -> Expect:
    return {"other": 403, "reader": 403, "writer": 403, "owner": 403, "admin": status}


def own(status: int = 200, others: int = 403) -> Expect:
    """Alice herself and administrators; everyone else ``others``."""
    return {"other": others, "reader": others, "writer": others, "owner": status,
            "admin": status}


@dataclass
class Case:
    """One request of a route, and the status each role must get."""

    path: str
    expect: Expect
    body: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    before: Callable[[World], None] | None = None
    # Anonymous callers get 401 and metrics-only tokens 403, except where said.
    anonymous: int = 401
    metrics: int = 403


@dataclass
class World:
    """What the cases act on: the test driver, the site administrator's session."""

    conn: Any
    admin: Session
    cast: Cast
    job: str = ""
    lab_file: Path | None = None

    def running(self, domain: str = "lab-web") -> None:
        dom = self.conn.lookupByName(domain)
        state = dom.state()[0]
        if state == libvirt.VIR_DOMAIN_PAUSED:
            dom.resume()
        elif state != libvirt.VIR_DOMAIN_RUNNING:
            dom.create()

    def user(self, name: str) -> None:
        from corral.state.accounts import Accounts

        if Accounts(self.admin.require_store()).user(name) is None:
            add_user(self.admin, self.admin.identity, name)

    def lab_present(self) -> None:
        """``lab`` as the fixture made it: a role's removal of it is undone before the
        next role asks (a project that is gone answers 404 to all but administrators)."""
        if self.admin.require_store().get_project("lab") is not None:
            return
        assert self.lab_file is not None
        alice = Identity(name="alice", admin=False, source="test")
        with Session(self.admin.site, identity=alice) as session:
            projects.up(session, self.lab_file, wait=False)
        share_project(self.admin, self.admin.identity, "lab", "carol", Access.READ)
        share_project(self.admin, self.admin.identity, "lab", "dave", Access.WRITE)

    def shared_with_erin(self) -> None:
        share_project(self.admin, self.admin.identity, "lab", "erin", Access.READ)

    def template(self) -> None:
        if "extra" not in {t.name for t in self.admin.registry.list()}:
            self.admin.registry.add("extra", self.base())

    def base(self) -> Path:
        found = self.admin.site.paths.templates.parent / "base.qcow2"
        return found


def _vm(path: str) -> Case:
    return Case(path, writing(), before=lambda w: w.running())


def _vm_console(path: str) -> Case:
    """Typing on a console changes the VM: a writer's action; a read-only sharer is
    refused before the websocket opens. Those let through reach libvirt, whose test
    driver has no consoles (502 naming virDomainOpenConsole); a console that opens
    and relays, as each role, is tests/server/test_remote_console.py's."""
    return Case(path, writing(502), before=lambda w: w.running())


PROJECT_FILE = {"text": LAB, "name": "lab.corral"}

CASES: dict[tuple[str, str], list[Case]] = {
    ("POST", "/api/v1/validate"): [Case("/api/v1/validate", everyone(200), PROJECT_FILE)],
    ("POST", "/api/v1/show"): [Case("/api/v1/show", everyone(200), PROJECT_FILE)],
    ("GET", "/api/v1/projects/{project}/show"): [Case("/api/v1/projects/lab/show", reading())],
    ("POST", "/api/v1/plan"): [Case("/api/v1/plan", reading(), PROJECT_FILE)],
    ("GET", "/api/v1/projects/{project}/plan"): [Case("/api/v1/projects/lab/plan", reading())],
    ("PATCH", "/api/v1/projects/{project}/file"): [
        Case("/api/v1/projects/lab/file", writing(),
             {"path": "superclass.node.maxmem", "value": ["256M"]})],
    ("POST", "/api/v1/projects/up"): [Case("/api/v1/projects/up", writing(202), PROJECT_FILE)],
    ("POST", "/api/v1/projects/build"): [
        Case("/api/v1/projects/build", writing(202), PROJECT_FILE)],
    ("POST", "/api/v1/projects/upgrade"): [
        Case("/api/v1/projects/upgrade", writing(202), PROJECT_FILE)],
    ("POST", "/api/v1/projects/{project}/start"): [
        Case("/api/v1/projects/lab/start", writing(202), {"wait": False})],
    ("POST", "/api/v1/projects/{project}/stop"): [
        Case("/api/v1/projects/lab/stop", writing(202), {"timeout_s": 0})],
    ("POST", "/api/v1/projects/{project}/suspend"): [
        Case("/api/v1/projects/lab/suspend", writing(202), before=lambda w: w.running())],
    ("GET", "/api/v1/projects/{project}/removal"): [
        Case("/api/v1/projects/lab/removal", writing())],
    ("GET", "/api/v1/projects"): [Case("/api/v1/projects", everyone(200))],
    ("GET", "/api/v1/status"): [Case("/api/v1/status", everyone(200))],
    ("GET", "/api/v1/projects/{project}/status"): [
        Case("/api/v1/projects/lab/status", reading())],
    ("GET", "/api/v1/projects/{project}/ssh"): [Case("/api/v1/projects/lab/ssh", reading())],
    ("GET", "/api/v1/projects/{project}/inventory"): [
        Case("/api/v1/projects/lab/inventory", reading())],
    ("POST", "/api/v1/fleet"): [Case("/api/v1/fleet", admins(202), {"action": "start"})],
    ("POST", "/api/v1/vms/{target}/shutdown"): [
        Case("/api/v1/vms/lab.web/shutdown", writing(), {"timeout_s": 0},
             before=lambda w: w.running())],
    ("POST", "/api/v1/vms/{target}/memory"): [
        Case("/api/v1/vms/lab.web/memory", writing(), {"memory": "192M"})],
    ("POST", "/api/v1/vms/{target}/vcpus"): [
        Case("/api/v1/vms/lab.web/vcpus", writing(), {"count": 1})],
    ("GET", "/api/v1/vms/{target}/xml"): [Case("/api/v1/vms/lab.web/xml", reading())],
    ("GET", "/api/v1/vms/{target}/log"): [Case("/api/v1/vms/lab.web/log", reading())],
    ("WEBSOCKET", "/api/v1/vms/{target}/console"): [_vm_console("/api/v1/vms/lab.web/console")],
    ("POST", "/api/v1/vms/{target}/migrate"): [
        Case("/api/v1/vms/lab.web/migrate", writing(202), {"service_host": "local"})],
    ("POST", "/api/v1/vms/batch/memory"): [
        Case("/api/v1/vms/batch/memory", writing(202),
             {"targets": ["lab.web", "lab.app"], "memory": "192M"})],
    ("POST", "/api/v1/vms/batch/vcpus"): [
        Case("/api/v1/vms/batch/vcpus", writing(202), {"targets": ["lab.web"], "count": 1})],
    ("POST", "/api/v1/vms/batch/{action}"): [
        Case("/api/v1/vms/batch/pause", writing(202), {"targets": ["lab.web", "lab.app"]},
             before=lambda w: w.running())],
    ("POST", "/api/v1/vms/{target}/{action}"): [
        _vm(f"/api/v1/vms/lab.web/{verb}")
        for verb in ("reboot", "destroy", "pause", "resume", "suspend", "restore")],
    ("GET", "/api/v1/hosts"): [Case("/api/v1/hosts", everyone(200))],
    ("GET", "/api/v1/info"): [Case("/api/v1/info", everyone(200))],
    ("GET", "/api/v1/templates"): [Case("/api/v1/templates", everyone(200))],
    ("GET", "/api/v1/templates/copies"): [Case("/api/v1/templates/copies", admins())],
    ("POST", "/api/v1/templates/copies/verify"): [
        Case("/api/v1/templates/copies/verify", admins())],
    ("POST", "/api/v1/templates"): [Case("/api/v1/templates", admins(), None)],
    ("DELETE", "/api/v1/templates/{name}"): [
        Case("/api/v1/templates/extra", admins(), before=lambda w: w.template())],
    ("POST", "/api/v1/templates/build"): [
        Case("/api/v1/templates/build", admins(202), {"name": "nonesuch"})],
    ("GET", "/api/v1/whoami"): [Case("/api/v1/whoami", everyone(200))],
    ("GET", "/api/v1/users"): [Case("/api/v1/users", everyone(200))],
    ("POST", "/api/v1/users"): [Case("/api/v1/users", admins(201), {"name": "zoe"})],
    ("GET", "/api/v1/users/{name}"): [Case("/api/v1/users/alice", own())],
    ("GET", "/api/v1/users/{name}/removal"): [Case("/api/v1/users/alice/removal", admins())],
    ("DELETE", "/api/v1/users/{name}"): [
        Case("/api/v1/users/victim", admins(), before=lambda w: w.user("victim"))],
    ("PUT", "/api/v1/users/{name}/password"): [
        Case("/api/v1/users/alice/password", own(204), {"password": "correct horse"})],
    ("PATCH", "/api/v1/users/{name}/quota"): [
        Case("/api/v1/users/alice/quota", admins(), {"max_vms": 50})],
    ("GET", "/api/v1/tokens"): [Case("/api/v1/tokens", everyone(200))],
    ("POST", "/api/v1/tokens"): [Case("/api/v1/tokens", own(201), {"user": "alice"})],
    ("DELETE", "/api/v1/tokens/{token_id}"): [Case("/api/v1/tokens/{spare}", own(200, 404))],
    ("GET", "/api/v1/projects/{project}/shares"): [
        Case("/api/v1/projects/lab/shares",
             {"other": 404, "reader": 403, "writer": 403, "owner": 200, "admin": 200})],
    ("PUT", "/api/v1/projects/{project}/shares/{user}"): [
        Case("/api/v1/projects/lab/shares/erin",
             {"other": 404, "reader": 403, "writer": 403, "owner": 200, "admin": 200},
             {"access": "read"})],
    ("DELETE", "/api/v1/projects/{project}/shares/{user}"): [
        Case("/api/v1/projects/lab/shares/erin",
             {"other": 404, "reader": 403, "writer": 403, "owner": 204, "admin": 204},
             before=lambda w: w.shared_with_erin())],
    ("GET", "/api/v1/audit"): [Case("/api/v1/audit", admins())],
    ("GET", "/api/v1/jobs"): [Case("/api/v1/jobs", everyone(200))],
    ("GET", "/api/v1/jobs/{job_id}"): [Case("/api/v1/jobs/{job}", own(200, 404))],
    ("GET", "/api/v1/jobs/{job_id}/events"): [Case("/api/v1/jobs/{job}/events", own(200, 404))],
    ("GET", "/metrics"): [Case("/metrics", admins(), metrics=200)],
    # Last: it removes the project the others act on.
    ("DELETE", "/api/v1/projects/{project}"): [
        Case("/api/v1/projects/lab", writing(202), before=World.lab_present)],
}


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route that takes the caller's credentials (the
    portal's pages have tests of their own: tests/server/test_portal_*.py);
    a websocket's method is ``WEBSOCKET``."""
    found = []
    for route in app.routes:
        if isinstance(route, APIWebSocketRoute):
            found.append(("WEBSOCKET", route.path))
            continue
        if not isinstance(route, APIRoute) or isinstance(route, PortalRoute):
            continue
        calls = {d.call for d in route.dependant.dependencies}
        assert calls, f"route {route.path} does not identify its caller"
        found += [(method, route.path) for method in sorted(route.methods)]
    return found


def test_every_route_has_expectations(app: FastAPI) -> None:
    routes = api_routes(app)
    assert sorted(routes) == sorted(CASES), (
        f"routes without expectations: {sorted(set(routes) - set(CASES))}; "
        f"expectations without a route: {sorted(set(CASES) - set(routes))}")


def test_every_api_route_identifies_its_caller_first(app: FastAPI) -> None:
    from corral.server.context import metrics_caller

    for route in app.routes:
        if isinstance(route, APIRoute) and not isinstance(route, PortalRoute):
            assert route.dependant.dependencies[0].call in (caller, metrics_caller), route.path


@pytest.fixture
def world(admin_session: Session, cast: Cast, client: TestClient,
          tmp_path: Path) -> World:
    """``lab`` brought up by alice from a file on the server (so show and plan can
    read it again), shared with carol and dave; erin, and a job of alice's."""
    lab = tmp_path / "lab.corral"
    lab.write_text(LAB)
    alice = Identity(name="alice", admin=False, source="test")
    with Session(admin_session.site, identity=alice) as session:
        projects.up(session, lab, wait=False)
    share_project(admin_session, admin_session.identity, "lab", "carol", Access.READ)
    share_project(admin_session, admin_session.identity, "lab", "dave", Access.WRITE)
    add_user(admin_session, admin_session.identity, "erin")
    started = client.post("/api/v1/projects/lab/start", headers=cast.headers("owner"),
                          json={"wait": False})
    assert started.status_code == 202, started.text
    wait_job(client, started.json()["href"], cast.headers("owner"))
    conn = libvirt.open("test:///default")
    return World(conn, admin_session, cast, started.json()["id"], lab)


def _request(client: TestClient, method: str, case: Case, world: World,
             role: str) -> tuple[int, str]:
    path = case.path.replace("{job}", world.job)
    if "{spare}" in path:  # a token of alice's to revoke, new for each caller
        spare = create_token(world.admin, world.admin.identity, "alice", "spare", Scope.FULL)
        path = path.replace("{spare}", str(spare.record.id))
    body = case.body
    if path == "/api/v1/templates" and method == "POST":
        body = {"name": f"added-{role}", "file": str(world.base())}
    if method == "WEBSOCKET":
        return _open_websocket(client, path, world.cast.headers(role))
    answer = client.request(method, path, headers=world.cast.headers(role), json=body,
                            params=case.params)
    if answer.status_code == 202:
        wait_job(client, answer.json()["href"], world.cast.headers("admin"))
    return answer.status_code, answer.text[:300]


def _open_websocket(client: TestClient, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """101 when the websocket opened (closed again at once), else the status and
    body of the answer that refused it before it opened."""
    try:
        with client.websocket_connect(path, headers=headers):
            return 101, ""
    except WebSocketDenialResponse as refused:
        return refused.status_code, refused.text[:300]


def test_every_route_answers_every_caller_as_expected(
    client: TestClient, app: FastAPI, world: World
) -> None:
    last = ("DELETE", "/api/v1/projects/{project}")
    order = sorted(api_routes(app), key=lambda r: r == last)
    wrong = []
    for method, route in order:
        for case in CASES[(method, route)]:
            expected = {"anonymous": case.anonymous, "metrics": case.metrics, **case.expect}
            assert set(expected) == set(ROLES), route
            for role in ROLES:
                if case.before is not None:
                    case.before(world)
                status, text = _request(client, method, case, world, role)
                if status != expected[role]:
                    wrong.append(f"{method} {case.path} as {role}: {status}, "
                                 f"expected {expected[role]}: {text}")
    assert not wrong, "\n".join(wrong)


def test_a_refusal_is_audited(client: TestClient, cast: Cast, world: World) -> None:
    client.post("/api/v1/vms/lab.web/pause", headers=cast.headers("reader"))
    client.get("/api/v1/projects/lab/status", headers=cast.headers("other"))
    client.get("/api/v1/status", headers={"Authorization": "Bearer crl_wrong"})
    client.get("/api/v1/status")
    entries = client.get("/api/v1/audit", headers=cast.headers("admin")).json()
    seen = [(e["user"], e["action"], e["result"]) for e in entries]
    assert ("carol", "vm.pause", "refused") in seen
    assert ("bob", "status", "refused") in seen
    assert ("-", "authenticate", "refused") in seen
    refused = [e for e in entries if e["user"] == "bob" and e["action"] == "status"]
    assert "not shared with 'bob'" in refused[0]["detail"]
    assert all(e["source"] == "127.0.0.1" for e in entries if e["user"] in ("bob", "carol"))

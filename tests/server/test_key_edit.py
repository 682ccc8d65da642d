"""``PATCH /api/v1/projects/{project}/file`` and the portal's "set one key" form:
``corral set`` on the file the server keeps, saved only when the result loads."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from portal_support import browser, give_passwords, log_in
from server_support import LAB, Cast

from corral.ops.journal import project_lock
from corral.ops.session import Session
from corral.state.texts import ProjectTexts

ROUTE = "/api/v1/projects/lab/file"


def _kept(admin_session: Session) -> str:
    saved = ProjectTexts(admin_session.require_store()).get("lab")
    assert saved is not None
    return saved.text


def _memories(client: TestClient, cast: Cast) -> dict[str, int]:
    shown = client.get("/api/v1/projects/lab/show", headers=cast.headers("owner")).json()
    return {name: host["memory_mib"] for name, host in shown["hosts"].items()}


def test_a_writer_sets_and_removes_a_key_of_the_kept_file(
    client: TestClient, cast: Cast, lab: dict[str, Any], admin_session: Session
) -> None:
    dave = cast.headers("writer")
    answer = client.patch(ROUTE, headers=dave,
                          json={"path": "host.web.memory", "value": ["192M"]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"file": "lab.corral", "line": 19, "path": "host.web.memory",
                             "action": "added", "old": None, "new": "memory 192M"}
    assert _memories(client, cast) == {"web": 192, "app": 128}
    assert _kept(admin_session) == LAB.replace(
        "        address dhcp\n    }\n}\nhost app",
        "        address dhcp\n    }\n    memory 192M\n}\nhost app")
    one_word = client.patch(ROUTE, headers=dave, json={"path": "host.web.memory",
                                                       "value": "160M"})
    assert one_word.json()["action"] == "changed" and one_word.json()["old"] == "memory 192M"
    removed = client.patch(ROUTE, headers=dave, json={"path": "host.web.memory", "value": None})
    assert removed.status_code == 200 and removed.json()["action"] == "removed"
    assert _kept(admin_session) == LAB
    entries = client.get("/api/v1/audit", headers=cast.headers("admin")).json()
    assert [e["result"] for e in entries
            if e["action"] == "project.edit" and e["user"] == "dave"] == ["ok"] * 3


def test_a_result_that_does_not_load_is_not_saved(
    client: TestClient, cast: Cast, lab: dict[str, Any], admin_session: Session
) -> None:
    alice = cast.headers("owner")
    answer = client.patch(ROUTE, headers=alice,
                          json={"path": "superclass.node.memory", "value": ["lots"]})
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"].startswith("lab.corral:8:12: error: memory: 'lots' is not a size")
    assert [(d["file"], d["line"]) for d in body["diagnostics"]] == [("lab.corral", 8)]
    assert "not written" in body["hint"]
    renamed = client.patch(ROUTE, headers=alice,
                           json={"path": "global.project", "value": ["other"]})
    assert renamed.status_code == 422 and "declares project 'other'" in renamed.text
    twice = client.patch(ROUTE, headers=alice, json={"path": "host.app.network",
                                                     "value": None})
    assert twice.status_code == 200  # one interface: not ambiguous
    assert client.patch(ROUTE, headers=alice, json={"path": "host..x", "value": None}
                        ).status_code == 400
    assert client.patch(ROUTE, headers=alice, json={"path": "host.web.cpus", "value": None}
                        ).status_code == 404
    assert client.patch(ROUTE, headers=alice, json={"path": "host.web.memory"}
                        ).status_code == 400  # the value (or null) must be given
    assert "memory lots" not in _kept(admin_session)


def test_a_read_only_share_is_refused_and_others_do_not_see_the_project(
    client: TestClient, cast: Cast, lab: dict[str, Any], admin_session: Session
) -> None:
    edit = {"path": "host.web.memory", "value": ["192M"]}
    assert client.patch(ROUTE, headers=cast.headers("reader"), json=edit).status_code == 403
    hidden = client.patch(ROUTE, headers=cast.headers("other"), json=edit)
    missing = client.patch("/api/v1/projects/nosuch/file", headers=cast.headers("other"),
                           json=edit)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"] == missing.json()["error"].replace("nosuch", "lab")
    assert client.patch(ROUTE, json=edit).status_code == 401
    assert _kept(admin_session) == LAB
    entries = client.get("/api/v1/audit", headers=cast.headers("admin")).json()
    assert ("carol", "project.edit", "refused") in {
        (e["user"], e["action"], e["result"]) for e in entries}


def test_the_portal_form_sets_a_key_through_the_same_operation(
    app: FastAPI, cast: Cast, lab: dict[str, Any], admin_session: Session
) -> None:
    give_passwords(admin_session)
    dave = browser(app)
    csrf = log_in(dave, "writer")
    assert 'action="/projects/lab/key"' in dave.get("/projects/lab").text
    done = dave.post("/projects/lab/key", data={
        "csrf_token": csrf, "path": "host.web.files./etc/motd", "value": '"Hello there"',
        "action": "set"})
    assert done.status_code == 200, done.text
    assert "lab.corral:19: added files { /etc/motd &#34;Hello there&#34; }" in done.text
    assert '/etc/motd "Hello there"' in _kept(admin_session)
    refused = dave.post("/projects/lab/key", data={
        "csrf_token": csrf, "path": "host.web.network.eth0.address", "value": "nowhere",
        "action": "set"})
    assert refused.status_code == 422
    assert re.search(r"<code>lab\.corral:\d+:\d+</code>", refused.text)
    ambiguous = dave.post("/projects/lab/key", data={
        "csrf_token": csrf, "path": "host.web.nosuch", "action": "unset"})
    assert ambiguous.status_code == 404 and "nothing to remove" in ambiguous.text
    removed = dave.post("/projects/lab/key", data={
        "csrf_token": csrf, "path": "host.web.files", "action": "unset"})
    assert removed.status_code == 200 and _kept(admin_session) == LAB
    carol = browser(app)
    carol_csrf = log_in(carol, "reader")
    assert 'action="/projects/lab/key"' not in carol.get("/projects/lab").text
    assert carol.post("/projects/lab/key", data={
        "csrf_token": carol_csrf, "path": "host.web.memory", "value": "1G"}).status_code == 403
    assert dave.post("/projects/lab/key", data={"path": "host.web.memory", "value": "1G"}
                     ).status_code == 403  # no CSRF token


def test_while_an_operation_holds_the_project_an_edit_is_refused_at_once(
    client: TestClient, cast: Cast, lab: dict[str, Any], admin_session: Session
) -> None:
    """An ``up`` job records the file it applied when it ends: an edit meanwhile
    would be lost, so it is refused (409, naming the operation), not queued."""
    before = _kept(admin_session)
    with project_lock(admin_session, "lab", "upgrade"):
        answer = client.patch(ROUTE, headers=cast.headers("writer"),
                              json={"path": "host.web.memory", "value": ["192M"]})
        assert answer.status_code == 409, answer.text
        assert "project 'lab' is locked by" in answer.json()["error"]
        assert "upgrade" in answer.json()["error"]
    assert _kept(admin_session) == before

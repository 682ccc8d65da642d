"""The portal's pages on libvirt's test driver, with the cast of the server's tests:
alice owns ``lab``, carol may read it, dave may change it, bob may not see it,
root is an administrator."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import libvirt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from portal_support import PASSWORD, browser, give_passwords, log_in, login_post
from server_support import LAB, Cast, write_site

from corral.config import parse_site_config
from corral.ops.session import Session
from corral.ops.users import add_user, set_password
from corral.server.app import create_app
from corral.state.audit import AuditLog

GONE = """
[service_hosts.gone]
uri = "qemu+tcp://127.0.0.1:9/system"
"""
ACTION_BUTTON = re.compile(r'action="/vms/lab\.web/actions/|hx-post="/vms/')


@pytest.fixture
def portal(admin_session: Session, cast: Cast, lab: dict[str, Any]) -> Cast:
    give_passwords(admin_session)
    return cast


def _state(name: str) -> int:
    conn = libvirt.open("test:///default")
    try:
        return int(conn.lookupByName(name).state()[0])
    finally:
        conn.close()


def _as(app: FastAPI, role: str) -> tuple[TestClient, str]:
    client = browser(app)
    return client, log_in(client, role)


def test_the_overview_shows_hosts_and_the_vms_the_user_may_see(app: FastAPI,
                                                               portal: Cast) -> None:
    alice, _ = _as(app, "owner")
    page = alice.get("/")
    assert page.status_code == 200
    assert 'sse-connect="/overview/events"' in page.text
    assert ">local</th>" in page.text
    assert 'data-vm="lab.web"' in page.text and 'data-vm="lab.app"' in page.text
    assert 'hx-post="/vms/lab.web/actions/' in page.text  # hers: she may act
    assert '<a href="/projects/lab">lab</a>' in page.text
    bob, _ = _as(app, "other")
    assert "lab" not in bob.get("/").text.replace("label", "")
    carol, _ = _as(app, "reader")
    seen = carol.get("/").text
    assert 'data-vm="lab.web"' in seen and "hx-post" not in seen


def test_a_read_only_sharer_sees_no_actions_and_is_refused_one(
    app: FastAPI, portal: Cast, admin_session: Session
) -> None:
    carol, csrf = _as(app, "reader")
    page = carol.get("/vms/lab.web")
    assert page.status_code == 200 and "running" in page.text
    assert not ACTION_BUTTON.search(page.text) and "Set memory" not in page.text
    for path, data in (("/vms/lab.web/actions/pause", {}),
                       ("/vms/lab.web/actions/destroy", {"confirm": "yes"}),
                       ("/vms/lab.web/memory", {"memory": "200M"}),
                       ("/vms/lab.web/vcpus", {"count": "1"})):
        refused = carol.post(path, data={"csrf_token": csrf, **data})
        assert refused.status_code == 403, path
        assert "read-only" in refused.text
    assert _state("lab-web") == libvirt.VIR_DOMAIN_RUNNING
    entries = AuditLog(admin_session.require_store()).entries(user="carol")
    assert {e.action for e in entries if e.result == "refused"} >= {"vm.pause", "vm.destroy",
                                                                    "vm.mem-set"}


def test_a_hidden_project_is_not_found_as_in_the_api(app: FastAPI, portal: Cast) -> None:
    bob, csrf = _as(app, "other")
    api = bob.get("/api/v1/projects/lab/status", headers=portal.headers("other"))
    assert api.status_code == 404
    for path in ("/vms/lab.web", "/vms/lab.web/log", "/projects/lab"):
        answer = bob.get(path)
        assert answer.status_code == 404, path
        assert api.json()["error"].replace("'", "&#39;") in answer.text
    assert bob.post("/vms/lab.web/actions/pause",
                    data={"csrf_token": csrf}).status_code == 404
    assert bob.get("/vms/nope.web").status_code == 404


def test_the_owner_acts_on_a_vm(app: FastAPI, portal: Cast) -> None:
    alice, csrf = _as(app, "owner")
    page = alice.get("/vms/lab.web")
    for button in ("Shut down", "Reboot", "Pause", "Suspend", "Destroy"):
        assert f">{button}" in page.text, button
    assert "&lt;domain" in page.text  # its XML
    paused = alice.post("/vms/lab.web/actions/pause", data={"csrf_token": csrf})
    assert paused.status_code == 200 and "lab.web: paused" in paused.text
    assert _state("lab-web") == libvirt.VIR_DOMAIN_PAUSED
    assert ">Resume" in paused.text  # the page offers what fits the new state
    by_htmx = alice.post("/vms/lab.web/actions/resume", headers={"HX-Request": "true",
                                                                 "X-CSRF-Token": csrf})
    assert by_htmx.text.strip() == "<p>lab.web: resumed</p>"
    assert _state("lab-web") == libvirt.VIR_DOMAIN_RUNNING
    memory = alice.post("/vms/lab.web/memory", data={"csrf_token": csrf, "memory": "200M"})
    assert "lab.web: memory 200 MiB" in memory.text
    too_much = alice.post("/vms/lab.web/memory", data={"csrf_token": csrf, "memory": "9G"})
    assert too_much.status_code == 409 and "above its maximum" in too_much.text
    bad = alice.post("/vms/lab.web/vcpus", data={"csrf_token": csrf, "count": "many"})
    assert bad.status_code == 400 and "invalid request" in bad.text
    assert alice.get("/vms/lab.web/log").status_code == 200


def test_destroy_asks_first(app: FastAPI, portal: Cast) -> None:
    dave, csrf = _as(app, "writer")
    asked = dave.post("/vms/lab.app/actions/destroy", data={"csrf_token": csrf})
    assert asked.status_code == 200 and "Destroy lab.app?" in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    assert _state("lab-app") == libvirt.VIR_DOMAIN_RUNNING
    done = dave.post("/vms/lab.app/actions/destroy", data={"csrf_token": csrf,
                                                           "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/vms/lab.app"
    assert _state("lab-app") == libvirt.VIR_DOMAIN_SHUTOFF
    started = dave.post("/vms/lab.app/actions/start", data={"csrf_token": csrf})
    assert "lab.app: starting (job" in started.text


BAD = LAB.replace("memory 128M", "memory lots").replace("switch front\n", "switch back\n", 1)


def test_a_writer_edits_the_project_file_with_every_error_positioned(
    app: FastAPI, portal: Cast
) -> None:
    dave, csrf = _as(app, "writer")
    page = dave.get("/projects/lab")
    assert page.status_code == 200 and "<textarea" in page.text
    assert "project lab" in page.text  # the text the API brought it up with
    refused = dave.post("/projects/lab/file", data={"csrf_token": csrf, "text": BAD,
                                                    "name": "lab.corral"})
    assert refused.status_code == 422
    positions = re.findall(r"<code>(lab\.corral:\d+:\d+)</code>", refused.text)
    assert len(positions) >= 2, refused.text
    assert "memory lots" in refused.text  # the text stays in the editor
    other = dave.post("/projects/lab/file", data={
        "csrf_token": csrf, "text": LAB.replace("project lab", "project other"),
        "name": "lab.corral"})
    assert other.status_code == 422 and "declares project &#39;other&#39;" in other.text
    changed = LAB.replace("memory 128M", "memory 192M")
    saved = dave.post("/projects/lab/file", data={"csrf_token": csrf, "text": changed,
                                                  "name": "lab.corral"})
    assert saved.status_code == 200 and "saved lab.corral" in saved.text
    assert "Saved by dave" in saved.text and "memory" in saved.text
    shown = dave.get("/api/v1/projects/lab/show", headers=portal.headers("writer")).json()
    assert {h["memory_mib"] for h in shown["hosts"].values()} == {192}
    plan = dave.get("/api/v1/projects/lab/plan", headers=portal.headers("writer")).json()
    assert plan["empty"] is False
    carol, _ = _as(app, "reader")
    read_only = carol.get("/projects/lab").text
    assert "<textarea" not in read_only and "memory 192M" in read_only
    assert carol.post("/projects/lab/file", data={"csrf_token": _, "text": changed}
                      ).status_code == 403


def test_upgrade_from_the_portal_is_a_job_with_live_progress(app: FastAPI,
                                                             portal: Cast) -> None:
    alice, csrf = _as(app, "owner")
    changed = LAB.replace("memory 128M", "memory 160M")
    alice.post("/projects/lab/file", data={"csrf_token": csrf, "text": changed,
                                           "name": "lab.corral"})
    started = alice.post("/projects/lab/apply/upgrade", data={"csrf_token": csrf})
    assert started.status_code == 303 and started.headers["location"].startswith("/jobs/")
    events = alice.get(started.headers["location"] + "/events")
    assert events.headers["content-type"].startswith("text/event-stream")
    assert "event: end" in events.text and "Done (ok)" in events.text
    job = alice.get(started.headers["location"])
    assert "upgrade lab" in job.text and "Done (ok)" in job.text
    assert "sse-connect" not in job.text  # a finished job streams nothing
    bob, _ = _as(app, "other")
    assert bob.get(started.headers["location"]).status_code == 404


def test_remove_asks_first(app: FastAPI, portal: Cast) -> None:
    alice, csrf = _as(app, "owner")
    asked = alice.post("/projects/lab/remove", data={"csrf_token": csrf})
    assert asked.status_code == 200 and "lab-web" in asked.text
    assert _state("lab-web") == libvirt.VIR_DOMAIN_RUNNING
    done = alice.post("/projects/lab/remove", data={"csrf_token": csrf, "confirm": "yes"})
    assert done.status_code == 303
    assert "event: end" in alice.get(done.headers["location"] + "/events").text


def test_the_audit_page_is_for_administrators(app: FastAPI, portal: Cast,
                                              admin_session: Session) -> None:
    root, _ = _as(app, "admin")
    page = root.get("/audit", params={"user": "root", "since": "1h"})
    assert page.status_code == 200 and ">login</td>" in page.text
    users = re.findall(r'<tr class="result-\w+"><td><time>[^<]*</time></td><td>([^<]*)</td>',
                       page.text)
    assert users and set(users) == {"root"}
    assert root.get("/audit", params={"since": "soon"}).status_code == 400
    alice, _ = _as(app, "owner")
    assert 'href="/audit"' not in alice.get("/").text
    refused = alice.get("/audit")
    assert refused.status_code == 403 and "only an administrator" in refused.text
    entries = AuditLog(admin_session.require_store()).entries(user="alice")
    assert [e.action for e in entries if e.result == "refused"] == ["audit"]


BAD_SEGMENTS = ["..", "x" * 300, "%00", "lab.", ".web", "a b", "ÿ€", "lab.web.more", "UPPER"]


def test_malformed_portal_requests_get_a_page_never_a_500(app: FastAPI, portal: Cast) -> None:
    from portal_support import PATH_VALUES, portal_routes

    root, csrf = _as(app, "admin")
    problems = []
    for method, path in portal_routes(app):
        if path in ("/login", "/logout", "/overview/events"):
            continue
        names = [n for n in PATH_VALUES if "{" + n + "}" in path]
        for name in names:
            for bad in BAD_SEGMENTS:
                concrete = path.replace("{" + name + "}", bad)
                for other in names:
                    concrete = concrete.replace("{" + other + "}", PATH_VALUES[other])
                answer = root.request(method, concrete, data={"csrf_token": csrf,
                                                              "memory": "", "count": "-1",
                                                              "text": "", "confirm": "no"})
                if answer.status_code >= 500 and answer.status_code != 502:
                    problems.append(f"{method} {concrete}: {answer.status_code}")
                elif "Traceback" in answer.text:
                    problems.append(f"{method} {concrete}: traceback")
    assert not problems, problems


def test_a_silent_service_host_and_its_vms_are_greyed_and_say_so(tmp_path: Path) -> None:
    from corral.ops.status import StatusRow
    from corral.server.portal.render import render

    site = write_site(tmp_path)
    assert site.source is not None
    site.source.write_text(site.source.read_text() + GONE)
    app = create_app(parse_site_config(site.source.read_text(), site.source))
    with Session(app.state.corral.site) as admin:
        admin.backend("local").host_info()
        add_user(admin, admin.identity, "root", admin=True)
        set_password(admin, admin.identity, "root", PASSWORD)
    client = browser(app)
    assert login_post(client, {"user": "root", "password": PASSWORD}
                       ).status_code == 303
    page = client.get("/").text
    gone = re.search(r'<tr class="stale">\s*<th scope="row">gone</th>.*?</tr>', page, re.S)
    assert gone is not None, page
    assert "unknown" in gone.group(0)
    assert 'class="visually-hidden"> (stale reading' in gone.group(0)
    assert re.search(r'<tr class="">\s*<th scope="row">local</th>', page)
    rows = render("_vms.html", writable={"lab"}, read_at=datetime.now(UTC), rows=[
        StatusRow("lab", "web", "unknown", [], "gone", None, None, None, None,
                  last_seen="2026-05-01T12:00:00+00:00")])
    assert 'class="stale"' in rows and "stale reading" in rows
    assert "2026-05-01 12:00:00 UTC" in rows and "hx-post" not in rows

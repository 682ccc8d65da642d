"""Every control of the portal has an accessible name, so that a screen reader
announces what it does and voice control can reach it by name.

The pages walked are the portal's GET routes found in the app's route table,
fetched as an anonymous visitor (only ``/login`` answers them with a page), as
the owner of ``lab`` and as an administrator: today the overview, the login
form, the project page of ``lab``, the page of ``lab.web`` and its console log,
the page of the job that brought ``lab`` up, and the audit log (refused to the
owner: the error page is checked then). A route whose path has a parameter
without a value in :data:`VALUES` is skipped. The event streams the pages load
through htmx (the overview's, a VM's, a job's) are read from a real server and
each event's HTML fragment checked as well. The pages answered to a form that
asks first (destroy, remove) and an error page are checked too.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import httpx
import lxml.html
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from portal_support import (
    NAMES,
    PASSWORD,
    browser,
    give_passwords,
    log_in,
    login_post,
    serving,
    sse_events,
)
from server_support import Cast

from corral.config import SiteConfig
from corral.ops.session import Session
from corral.server.app import create_app
from corral.server.portal.guard import PortalRoute

CONTROLS = ("input", "select", "textarea", "button")
# Inputs a browser shows as buttons: their value is their name.
BUTTON_INPUTS = ("submit", "reset", "button")
ROLES = ("anonymous", "owner", "admin")


def _text(element: lxml.html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


def _describe(control: lxml.html.HtmlElement) -> str:
    attributes = " ".join(f'{k}="{v}"' for k, v in control.attrib.items()
                          if k in ("id", "name", "type", "value", "class", "hx-post"))
    forms = [f.get("action") for f in control.iterancestors("form")]
    within = f" in the form of {forms[0]}" if forms and forms[0] else ""
    return f"<{control.tag} {attributes}>{within} (line {control.sourceline})"


def _report(problems: dict[str, list[str]]) -> str:
    return "controls without a name:\n" + "\n".join(
        f"  {where}: {control}" for where, found in problems.items() for control in found)


def _named(control: lxml.html.HtmlElement, root: lxml.html.HtmlElement) -> bool:
    """Whether ``control`` has a name by one of the ways a browser gives one."""
    if control.get("aria-label", "").strip() or control.get("title", "").strip():
        return True
    labelledby = control.get("aria-labelledby", "").split()
    if labelledby:
        found = [root.xpath("//*[@id=$id]", id=i) for i in labelledby]
        if all(found) and any(_text(f[0]) for f in found):
            return True
    ident = control.get("id")
    if ident and any(_text(label) for label in root.xpath("//label[@for=$id]", id=ident)):
        return True
    if any(_text(label) for label in control.iterancestors("label")):
        return True
    if control.tag == "button":
        return bool(_text(control))
    kind = control.get("type", "").lower()
    return control.tag == "input" and kind in BUTTON_INPUTS and bool(control.get("value"))


def unnamed_controls(html: str) -> list[str]:
    """The controls of ``html`` (a page or a fragment) that have no accessible name."""
    if not html.strip():
        return []
    root = lxml.html.fromstring(html)
    controls = [c for c in root.iter(*CONTROLS)
                if not (c.tag == "input" and c.get("type", "").lower() == "hidden")]
    return [_describe(c) for c in controls if not _named(c, root)]


# ---- the checker itself


@pytest.mark.parametrize("html", [
    '<form><input name="memory"></form>',
    '<label for="other">Memory</label><input id="memory" name="memory">',
    '<label for="memory"></label><input id="memory" name="memory">',
    '<input name="memory" aria-label="  ">',
    '<input name="memory" aria-labelledby="nowhere">',
    '<h2 id="empty"></h2><input name="memory" aria-labelledby="empty">',
    '<select name="size"><option>1</option></select>',
    '<textarea name="text"></textarea>',
    '<button type="submit"></button>',
    '<button type="submit"><img src="x.svg"></button>',
    '<input type="submit">',
    '<input type="checkbox" name="yes"> Yes',
    '<tr><td><button hx-post="/vms/lab.web/actions/start"> </button></td></tr>',
])
def test_the_checker_finds_a_control_without_a_name(html: str) -> None:
    """Otherwise the walk over the pages below would pass whatever they contain."""
    assert len(unnamed_controls(html)) == 1, html


@pytest.mark.parametrize("html", [
    '<label for="memory">Memory</label><input id="memory" name="memory">',
    '<input id="memory" name="memory"><label for="memory">Memory</label>',
    "<label>Memory <input name='memory'></label>",
    '<input name="memory" aria-label="Memory">',
    '<h2 id="m">Memory</h2><input name="memory" aria-labelledby="m">',
    '<select name="size" title="Size"><option>1</option></select>',
    '<label for="t">Text</label><textarea id="t" name="text"></textarea>',
    '<button type="submit">Set memory</button>',
    '<button type="submit" aria-label="Start lab.web"></button>',
    '<input type="submit" value="Save">',
    '<input type="hidden" name="csrf_token" value="abc">',
    '<p>No controls here.</p>',
    "",
])
def test_the_checker_accepts_each_way_of_naming_a_control(html: str) -> None:
    assert unnamed_controls(html) == [], html


# ---- the portal's pages


VALUES = {"target": "lab.web", "project": "lab"}


@pytest.fixture
def portal(admin_session: Session, cast: Cast, lab: dict[str, Any]) -> dict[str, str]:
    """Passwords for the cast, and a value for each path parameter of the portal's
    pages (the job's: the one that brought ``lab`` up)."""
    give_passwords(admin_session)
    return {**VALUES, "job_id": str(lab["id"])}


def _streams(route: APIRoute) -> bool:
    answer = inspect.signature(route.endpoint, eval_str=True).return_annotation
    return inspect.isclass(answer) and issubclass(answer, StreamingResponse)


def _gets(app: FastAPI, values: dict[str, str], *, streams: bool) -> Iterator[str]:
    """The paths of the portal's GET routes (the event streams or the rest), each
    parameter filled from ``values``; a route with a parameter not there is skipped."""
    for route in app.routes:
        if not (isinstance(route, PortalRoute) and "GET" in route.methods
                and _streams(route) == streams):
            continue
        path = route.path
        for name, value in values.items():
            path = path.replace("{" + name + "}", value)
        if "{" not in path:
            yield path


def _client(app: FastAPI, role: str) -> TestClient:
    client = browser(app)
    if role != "anonymous":
        log_in(client, role)
    return client


def test_every_page_names_its_controls(app: FastAPI, portal: dict[str, str]) -> None:
    """Each path is a page (200) to one of the roles at least, and the administrator,
    who may see every page, is refused none; every answer's controls are checked,
    refusals' pages too."""
    paths = list(_gets(app, portal, streams=False))
    assert {"/", "/login", "/projects/lab", "/vms/lab.web", "/audit",
            f"/jobs/{portal['job_id']}"} <= set(paths), paths
    problems: dict[str, list[str]] = {}
    shown: set[str] = set()
    for role in ROLES:
        client = _client(app, role)
        for path in paths:
            answer = client.get(path)
            assert answer.status_code < 500, (role, path, answer.text[:300])
            if answer.is_redirect:
                continue
            if role == "admin":
                assert answer.status_code == 200, (path, answer.text[:300])
            assert answer.headers["content-type"].startswith("text/html"), (role, path)
            if answer.status_code == 200:
                shown.add(path)
            if found := unnamed_controls(answer.text):
                problems[f"{role} {path}"] = found
    assert shown == set(paths)
    assert not problems, _report(problems)


def _filled_swaps(client: httpx.Client, pages: list[str]) -> dict[str, set[str]]:
    """For each event stream one of ``pages`` connects to, the events it shows at
    once (the swap targets the page fills in): those the stream sends at once. The
    targets left empty (the session's end) are filled only later."""
    filled: dict[str, set[str]] = {}
    for path in pages:
        answer = client.get(path)
        if answer.status_code != 200:
            continue
        for source in lxml.html.fromstring(answer.text).xpath("//*[@sse-connect]"):
            swaps = {s.get("sse-swap") for s in source.xpath(".//*[@sse-swap]")
                     if len(s) or (s.text or "").strip()}
            filled.setdefault(source.get("sse-connect").split("?")[0], set()).update(swaps)
    return filled


def test_every_event_stream_names_its_controls(app: FastAPI, site: SiteConfig,
                                               portal: dict[str, str]) -> None:
    """Each stream is read until it ends (a finished job's) or has sent every part
    its page shows at once."""
    pages = list(_gets(app, portal, streams=False))
    streams = list(_gets(app, portal, streams=True))
    assert {"/overview/events", "/vms/lab.web/events",
            f"/jobs/{portal['job_id']}/events"} <= set(streams), streams
    problems: dict[str, list[str]] = {}
    with serving(create_app(site)) as url:
        for role in ("owner", "admin"):
            with httpx.Client(base_url=url, timeout=30) as client:
                logged_in = login_post(client, {"user": NAMES[role], "password": PASSWORD})
                assert logged_in.status_code == 303
                filled = _filled_swaps(client, pages)
                for path in streams:
                    awaited, seen = filled.get(path, set()), set()
                    with client.stream("GET", path) as stream:
                        assert stream.status_code == 200, (role, path)
                        for event, data in sse_events(stream.iter_lines()):
                            seen.add(event)
                            if found := unnamed_controls(data):
                                problems[f"{role} {path} {event}"] = found
                            if awaited and awaited <= seen:
                                break
                    assert seen and seen >= awaited, (role, path, seen)
    assert not problems, _report(problems)


def test_the_pages_that_ask_first_and_an_error_page_name_their_controls(
    app: FastAPI, portal: dict[str, str]
) -> None:
    """Destroy and remove answer a plain form with a page that asks to confirm."""
    client = browser(app)
    csrf = log_in(client, "owner")
    answers = {
        "destroy": client.post("/vms/lab.web/actions/destroy", data={"csrf_token": csrf}),
        "remove": client.post("/projects/lab/remove", data={"csrf_token": csrf}),
        "not found": client.get("/vms/lab.nowhere"),
    }
    assert answers["destroy"].status_code == 200 and "Destroy lab.web?" in answers["destroy"].text
    assert answers["remove"].status_code == 200 and "Remove project lab?" in answers["remove"].text
    assert answers["not found"].status_code == 404
    assert {k: unnamed_controls(a.text) for k, a in answers.items()} == {
        k: [] for k in answers}

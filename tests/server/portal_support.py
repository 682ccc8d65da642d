"""What the portal's tests share: passwords for the cast, logging in, the CSRF token
of a page, and the portal's routes from the app's own route table."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_support import CLIENT

from corral.ops.session import Session
from corral.ops.users import set_password
from corral.server.portal.guard import PortalRoute

PASSWORD = "correct horse battery"
NAMES = {"owner": "alice", "other": "bob", "reader": "carol", "writer": "dave",
         "admin": "root"}
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
_LOGIN_CSRF = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]+)"')


def give_passwords(admin: Session) -> None:
    for name in NAMES.values():
        set_password(admin, admin.identity, name, PASSWORD)


def browser(app: FastAPI, base_url: str = "http://testserver") -> TestClient:
    """A client with a cookie jar of its own (the app's lifespan is the fixture's)."""
    return TestClient(app, client=CLIENT, base_url=base_url, follow_redirects=False)


def login_post(client: httpx.Client, data: dict[str, str]) -> httpx.Response:
    """Post the login form as a browser does: the form fetched first, its token
    (double-submitted with the login cookie the form set) sent with ``data``."""
    form = client.get("/login")
    found = _LOGIN_CSRF.search(form.text)
    assert found is not None, "the login form has no CSRF token"
    return client.post("/login", data={"csrf_token": found.group(1), **data})


def log_in(client: TestClient, role: str, password: str = PASSWORD) -> str:
    """Log ``role`` in; the CSRF token their pages carry."""
    answer = login_post(client, {"user": NAMES[role], "password": password, "next": "/"})
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/").text)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no CSRF token"
    return found.group(1)


def portal_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every portal page and form."""
    return sorted((method, route.path) for route in app.routes
                  if isinstance(route, PortalRoute) for method in route.methods)


# A value for each path parameter of the portal's routes.
PATH_VALUES = {"target": "lab.web", "project": "lab", "action": "pause", "operation": "upgrade",
               "job_id": "0" * 32}


def concrete(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a parameter of {path}: add it to PATH_VALUES"
    return path


@contextmanager
def serving(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port (or ``port``: a server started
    again where one was), in a thread of this process (so it shares libvirt's
    test driver with the test); its base URL."""
    if port is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=2)
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=15)


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(event, data) of each server-sent event of a stream's lines."""
    event, data = "", []
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and event:
            yield event, "\n".join(data)
            event, data = "", []

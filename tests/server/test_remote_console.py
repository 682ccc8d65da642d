"""``vm console`` through the server: the websocket's handshake, who may open it, the bytes.

libvirt's test driver has no console stream, so the service host here is the
test driver with one thing changed: its domains' consoles answer every
message with ``echo:`` and the message (:class:`EchoConsole`). The server is
real (uvicorn on loopback); the client is the ``websockets`` library and the
``corral`` command itself, as a process of its own.
"""

from __future__ import annotations

import os
import queue
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from remote_support import live_server
from server_support import Cast
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from corral.backends.base import Backend
from corral.backends.registry import open_backend
from corral.config import SiteConfig
from corral.server.app import create_app

ROOT = Path(__file__).resolve().parents[2]


class EchoConsole:
    """A console whose guest answers each message with ``echo:`` and the message, and
    goes away after ``poweroff``."""

    def __init__(self) -> None:
        self._said: queue.Queue[bytes] = queue.Queue()

    def read(self) -> bytes:
        return self._said.get()

    def write(self, data: bytes) -> None:
        self._said.put(b"echo:" + data)
        if data == b"poweroff\n":  # the guest goes away: its console ends
            self._said.put(b"")

    def close(self) -> None:
        self._said.put(b"")


def echoing(site: SiteConfig) -> Any:
    def factory(name: str, uri: str, runs: Path) -> Backend:
        backend = open_backend(name, uri, runs, site.paths.templates)
        backend.console_stream = lambda _domain: EchoConsole()  # type: ignore[method-assign]
        return backend
    return factory


@pytest.fixture
def app(site: SiteConfig, admin_session: object) -> FastAPI:
    """The server, its service host's consoles echoing (the ``lab`` fixture uses it)."""
    return create_app(site, backend_factory=echoing(site))


@pytest.fixture
def url(app: FastAPI, lab: dict[str, Any]) -> Iterator[str]:
    with live_server(app) as found:
        yield found


def _ws(url: str, target: str = "lab.web") -> str:
    return url.replace("http://", "ws://") + f"/api/v1/vms/{target}/console"


@pytest.mark.parametrize("role, status, error", [
    ("anonymous", 401, "no credentials: send 'Authorization: Bearer TOKEN'"),
    ("metrics", 403, "came with a metrics-only token"),
    ("other", 404, "project 'lab' not found"),
    ("reader", 403, "read-only: it may be looked at, not changed"),
])
def test_the_console_is_refused_before_it_opens(url: str, cast: Cast, role: str, status: int,
                                                error: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(_ws(url), additional_headers=cast.headers(role), open_timeout=10)
    answer = refused.value.response
    assert answer.status_code == status
    assert error in answer.body.decode()


def test_a_console_relays_bytes_both_ways(url: str, cast: Cast) -> None:
    for role in ("owner", "writer", "admin"):
        with connect(_ws(url), additional_headers=cast.headers(role), open_timeout=10) as ws:
            ws.send(b"ls\r")
            assert ws.recv(timeout=10) == b"echo:ls\r"
            ws.send("text too")
            assert ws.recv(timeout=10) == b"echo:text too"


def test_an_unknown_vm_or_a_bad_target_is_the_error_of_any_route(url: str, cast: Cast) -> None:
    for target, status in (("lab.nohost", 404), ("nodot", 400), ("ghost.web", 404)):
        with pytest.raises(InvalidStatus) as refused:
            connect(_ws(url, target), additional_headers=cast.headers("owner"), open_timeout=10)
        assert refused.value.response.status_code == status, target


def test_opening_the_console_is_audited(url: str, cast: Cast, admin_session: Any) -> None:
    from corral.ops.audit import entries

    with connect(_ws(url), additional_headers=cast.headers("owner"), open_timeout=10):
        pass
    with pytest.raises(InvalidStatus):
        connect(_ws(url), additional_headers=cast.headers("reader"), open_timeout=10)
    found = [(e.user, e.action, e.target, e.result) for e in
             entries(admin_session, admin_session.identity, limit=50)
             if e.action == "vm.console"]
    assert ("alice", "vm.console", "lab.web", "ok") in found
    assert ("carol", "vm.console", "lab.web", "refused") in found


def _corral(url: str, token: str, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    env.update(PYTHONPATH=str(ROOT), CORRAL_SERVER=url, CORRAL_TOKEN=token)
    return subprocess.Popen([sys.executable, "-m", "corral", *args], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _read_until(process: subprocess.Popen[bytes], wanted: bytes, timeout_s: float = 30) -> bytes:
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout_s
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    return seen


def test_corral_vm_console_attaches_through_the_server(url: str, cast: Cast) -> None:
    process = _corral(url, cast.tokens["owner"], "vm", "console", "lab.web")
    assert process.stdin is not None
    try:
        process.stdin.write(b"uname\n")
        process.stdin.flush()
        assert b"echo:uname\n" in _read_until(process, b"echo:uname\n")
        process.stdin.write(b"\x1d")  # Ctrl-], the escape: leaves
        process.stdin.flush()
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert b"Connected to lab.web through" in err and b"escape character is ^]" in err


def test_corral_vm_console_refused_says_why(url: str, cast: Cast) -> None:
    for role, code, message in (("reader", 12, b"error: "), ("other", 3,
                                b"error: project 'lab' not found")):
        process = _corral(url, cast.tokens[role], "vm", "console", "lab.web")
        _out, err = process.communicate(timeout=60)
        assert process.returncode == code, err
        assert err.startswith(message) and b"Traceback" not in err


def test_the_console_ends_when_the_guest_goes_away(url: str, cast: Cast) -> None:
    process = _corral(url, cast.tokens["owner"], "vm", "console", "lab.web")
    assert process.stdin is not None
    try:
        process.stdin.write(b"poweroff\n")
        process.stdin.flush()
        process.wait(timeout=30)  # its input still open: the server ended the console
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out == b"echo:poweroff\n"


def test_a_page_of_another_site_cannot_open_a_console(url: str, cast: Cast) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(_ws(url), additional_headers=cast.headers("owner"),
                origin="https://elsewhere.example", open_timeout=10)  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    assert b"another site" in refused.value.response.body
    with connect(_ws(url), additional_headers=cast.headers("owner"),
                 origin=url, open_timeout=10) as ws:  # type: ignore[arg-type]
        ws.send(b"x")
        assert ws.recv(timeout=10) == b"echo:x"


def test_a_portal_session_opens_the_console_from_its_own_pages(
        url: str, cast: Cast, admin_session: Any) -> None:
    import httpx
    from portal_support import NAMES, PASSWORD, give_passwords, login_post

    give_passwords(admin_session)
    with httpx.Client(base_url=url) as visitor:
        answer = login_post(visitor, {"user": NAMES["owner"], "password": PASSWORD,
                                      "next": "/"})
    assert answer.status_code == 303, answer.text
    cookie = f"corral_session={answer.cookies['corral_session']}"
    with connect(_ws(url), additional_headers={"Cookie": cookie}, origin=url,  # type: ignore[arg-type]
                 open_timeout=10) as ws:
        ws.send(b"y")
        assert ws.recv(timeout=10) == b"echo:y"
    with pytest.raises(InvalidStatus) as refused:
        connect(_ws(url), additional_headers={"Cookie": cookie},
                origin="https://elsewhere.example", open_timeout=10)  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403

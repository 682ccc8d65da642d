"""Running the CLI in this process against a real server in this process.

libvirt's test driver keeps its domains inside the process that opened it,
so a parity test runs the server (uvicorn on loopback, on a thread) and the
CLI (``corral.cli.app`` called directly, as ``corral`` does) side by side in
the test's process: local and ``--server`` commands see the same domains.
"""

from __future__ import annotations

import io
import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import uvicorn
from fastapi import FastAPI

from corral.cli.app import _register, app
from corral.cli.errors import run_guarded

# Times and durations move between two runs of the same command.
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?"
                     r'|"uptime_s": [\d.]+|"age_s": [\d.]+|\b\d+(m\d\ds|h\d\dm|d\d+h)\b')


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def masked(self) -> Ran:
        """The same, with dates and times replaced by a mark."""
        return Ran(self.code, _MOMENT.sub("<time>", self.out), _MOMENT.sub("<time>", self.err))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def live_server(application: FastAPI, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """``application`` served by uvicorn on a loopback port, on a thread (HTTPS with
    ``tls``, a certificate and its key); its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        application, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio",
        lifespan="on", ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def corral(args: list[str], env: Mapping[str, str] | None = None, stdin: str = "") -> Ran:
    """``corral ARGS`` as the console script runs it: its exit code, stdout and stderr.

    Only ``env`` of the CORRAL_ variables is set, so a test says exactly
    whether a command is local or goes to a server.
    """
    _register()
    out, err = io.StringIO(), io.StringIO()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    with mock.patch.dict(os.environ, {**clean, **(env or {})}, clear=True), \
            mock.patch("sys.stdin", io.StringIO(stdin)), redirect_stdout(out), \
            redirect_stderr(err):
        code = run_guarded(lambda: app(args=args, prog_name="corral", standalone_mode=False))
    return Ran(code, out.getvalue(), err.getvalue())


@dataclass(frozen=True)
class Sides:
    """How to run a command locally and through the server, as one user."""

    config: Path
    url: str

    def local(self, *args: str, stdin: str = "") -> Ran:
        return corral(["--config", str(self.config), *args], stdin=stdin)

    def remote(self, token: str, *args: str, stdin: str = "") -> Ran:
        return corral(["--server", self.url, *args], {"CORRAL_TOKEN": token}, stdin=stdin)

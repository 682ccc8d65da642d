"""``corral --server URL``: every command prints the same and exits the same as locally.

A real server (uvicorn on loopback) and the CLI run in this process over
libvirt's test driver, so both see the same domains: each command is run
locally and through the server, as an administrator, and the two runs must
agree on stdout (text and ``--json``), stderr and the exit code, errors
included. Changes are compared by doing them locally, undoing them, and
doing them again through the server.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from remote_support import Ran, Sides, live_server
from server_support import LAB, Cast

from corral.ops.session import Session

BAD = LAB.replace("memory 128M", "memory lots").replace("switch front\n", "switch back\n")


@pytest.fixture
def sides(app: FastAPI, admin_session: Session) -> Iterator[Sides]:
    config = admin_session.site.source
    assert config is not None
    with live_server(app) as url:
        yield Sides(config, url)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    found = {}
    for name, text in (("lab", LAB), ("bad", BAD),
                       ("bigger", LAB.replace("memory 128M", "memory 192M"))):
        path = tmp_path / f"{name}.corral"
        path.write_text(text)
        found[name] = path
    return found


def same(sides: Sides, cast: Cast, *args: str) -> Ran:
    """Run ``args`` both ways as an administrator; they must agree. The local run."""
    local = sides.local(*args).masked()
    remote = sides.remote(cast.tokens["admin"], *args).masked()
    if remote != local:
        diff = difflib.unified_diff(f"{local.out}{local.err}exit {local.code}".splitlines(),
                                    f"{remote.out}{remote.err}exit {remote.code}".splitlines(),
                                    "local", "remote", lineterm="")
        raise AssertionError(f"corral {' '.join(args)}:\n" + "\n".join(diff))
    return local


def test_read_commands_agree(sides: Sides, cast: Cast, files: dict[str, Path]) -> None:
    up = sides.local("up", str(files["lab"]))
    assert up.code == 0, up
    for args in (["status"], ["status", "--json"], ["status", "-p", "lab"],
                 ["status", "-p", "nothing"], ["list"], ["list", "--json"],
                 ["show", str(files["lab"])], ["show", str(files["lab"]), "--json"],
                 ["plan", str(files["lab"])], ["plan", str(files["lab"]), "--json"],
                 ["plan", str(files["bigger"])], ["plan", str(files["bigger"]), "--json"],
                 ["validate", str(files["lab"])], ["hosts"], ["hosts", "--json"],
                 ["info"], ["info", "--json"], ["template", "list"],
                 ["template", "list", "--json"], ["vm", "describe", "lab.web"]):
        same(sides, cast, *args)

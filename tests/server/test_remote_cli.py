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
import re
from collections.abc import Callable, Iterator
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


def test_errors_agree(sides: Sides, cast: Cast, files: dict[str, Path]) -> None:
    up = sides.local("up", str(files["lab"]))
    assert up.code == 0, up
    missing = str(files["lab"].with_name("missing.corral"))
    for args, code in ((["validate", str(files["bad"])], 1), (["show", str(files["bad"])], 1),
                       (["plan", str(files["bad"])], 1), (["up", str(files["bad"])], 1),
                       (["build", "-f", str(files["bad"])], 1),
                       (["validate", missing], 1), (["plan", missing], 1),
                       (["start", "-p", "nothing"], 3), (["stop", "-p", "nothing"], 3),
                       (["vm", "reboot", "nothing.web"], 3), (["vm", "reboot", "nodot"], 7),
                       (["vm", "describe", "lab.nohost"], 3),
                       (["vm", "mem-set", "lab.web", "lots"], 7),
                       (["remove", "-p", "lab"], 4), (["start", "-p", "lab", "--all"], 7)):
        local = same(sides, cast, *args)
        assert local.code == code, (args, local)
    positioned = sides.local("validate", str(files["bad"]))
    assert f"{files['bad']}:" in positioned.err and "^" in positioned.err


# Each step and its exit code, from nothing back to nothing.
STEPS = (
    (["up", "{lab}"], 0), (["up", "{lab}"], 0), (["upgrade", "-f", "{bigger}"], 0),
    (["plan", "{lab}"], 9), (["upgrade", "-f", "{lab}"], 0),
    (["stop", "-p", "lab", "-h", "web"], 0), (["start", "-p", "lab"], 0),
    (["vm", "pause", "lab.web"], 0), (["vm", "resume", "lab.web"], 0),
    (["vm", "pause", "lab.web", "lab.app"], 0), (["vm", "resume", "lab.web", "lab.app"], 0),
    (["vm", "mem-set", "lab.web", "200M"], 0), (["vm", "vcpu-set", "lab.app", "1"], 0),
    (["vm", "shutdown", "lab.web"], 0), (["vm", "destroy", "lab.app"], 0),
    (["vm", "pause", "lab.app"], 5), (["vm", "pause", "lab.app", "lab.web"], 10),
    (["start", "-p", "lab"], 0), (["vm", "reboot", "lab.web"], 0),
    (["suspend", "-p", "lab"], 0), (["start", "-p", "lab"], 0),
    (["remove", "-p", "lab", "--yes"], 0), (["build", "-f", "{lab}"], 0),
    (["remove", "-p", "lab", "--yes"], 0),
)


@pytest.mark.parametrize("json", [False, True], ids=["text", "json"])
def test_changes_agree(sides: Sides, cast: Cast, files: dict[str, Path], json: bool) -> None:
    """Every step done locally from nothing back to nothing, then the same through
    the server: each step prints and exits the same."""
    steps = [([a.format(**{k: str(v) for k, v in files.items()}) for a in step], code)
             for step, code in STEPS]
    if json:
        steps = [([*step, "--json"], code) for step, code in steps if step[0] in (
            "up", "upgrade", "plan", "stop", "start", "remove", "build", "suspend")]
    local = [sides.local(*step).masked() for step, _code in steps]
    remote = [sides.remote(cast.tokens["admin"], *step).masked() for step, _code in steps]
    for (step, code), here, there in zip(steps, local, remote, strict=True):
        assert here.code == code, (step, here)
        # Parallel work reports in the order it happens to finish.
        assert (there.code, there.out, sorted(there.err.splitlines())) == (
            here.code, here.out, sorted(here.err.splitlines())), (step, here, there)


# Users, tokens and shares from nothing back to nothing; "{token}" is the id
# the last `token create` printed.
ACCOUNT_STEPS = (
    ["user", "add", "eve", "--max-vms", "3"], ["user", "list"], ["user", "list", "--json"],
    ["user", "quota", "eve", "--max-memory", "2G"], ["user", "quota", "eve", "--json"],
    ["user", "passwd", "eve", "--password-stdin"],
    ["token", "create", "eve", "--name", "ci"], ["token", "list", "eve"],
    ["token", "list", "eve", "--json"], ["token", "revoke", "{token}"],
    ["token", "create", "eve", "--metrics-only", "--json"],
    ["project", "share", "lab", "eve", "--read"], ["project", "shares", "lab"],
    ["project", "shares", "lab", "--json"], ["project", "unshare", "lab", "eve"],
    ["user", "remove", "eve", "--yes"], ["audit", "--user", "nobody"],
    ["user", "quota", "eve"], ["token", "revoke", "999999"],
)
_SECRET = re.compile(r"crl_[\w-]+")
_NUMBER = re.compile(r"\b\d+\b")


def _accounts(run: Callable[..., Ran]) -> list[Ran]:
    """The account steps, their token ids and secrets masked (each run makes its own)."""
    ran: list[Ran] = []
    token = ""
    for step in ACCOUNT_STEPS:
        done = run(*[a.replace("{token}", token) for a in step],
                   stdin="a long password\n").masked()
        if step[:2] == ["token", "create"]:
            token = re.findall(r"token (\d+)", done.out)[0] if "--json" not in step else token
        ids = step[0] == "token" or step[:2] == ["user", "add"]
        ran.append(Ran(done.code, *(_NUMBER.sub("<n>", _SECRET.sub("<secret>", text))
                                    if ids else text for text in (done.out, done.err))))
    return ran


def test_account_commands_agree(sides: Sides, cast: Cast, files: dict[str, Path]) -> None:
    assert sides.local("up", str(files["lab"])).code == 0
    local = _accounts(sides.local)
    remote = _accounts(lambda *args, stdin: sides.remote(cast.tokens["admin"], *args,
                                                         stdin=stdin))
    for step, here, there in zip(ACCOUNT_STEPS, local, remote, strict=True):
        assert there == here, (step, here, there)
    assert [r.code for r in local] == [0] * 17 + [3, 3]

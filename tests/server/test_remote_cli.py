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

import click
import pytest
import typer
from fastapi import FastAPI
from remote_support import Ran, Sides, live_server
from server_support import LAB, Cast

from corral.cli.app import _register, app
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


def fill(args: list[str], files: dict[str, Path]) -> list[str]:
    """``args`` with ``{lab}`` and the like replaced by the path of that file."""
    paths = {name: str(path) for name, path in files.items()}
    paths["missing"] = str(files["lab"].with_name("missing.corral"))
    return [arg.format(**paths) for arg in args]


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


READS = (
    ["status"], ["status", "--json"], ["status", "-p", "lab"],
    ["status", "-p", "nothing"], ["list"], ["list", "--json"],
    ["show", "{lab}"], ["show", "{lab}", "--json"],
    ["plan", "{lab}"], ["plan", "{lab}", "--json"],
    ["plan", "{bigger}"], ["plan", "{bigger}", "--json"],
    ["validate", "{lab}"], ["hosts"], ["hosts", "--json"],
    ["info"], ["info", "--json"], ["template", "list"],
    ["template", "list", "--json"], ["vm", "describe", "lab.web"],
    ["vm", "log", "lab.web"], ["template", "copies"],
    ["template", "copies", "--json"], ["template", "copies", "--verify"],
    ["audit", "--user", "nobody", "--json"],
    ["ssh-config", "-p", "lab"], ["ssh-config", "-p", "lab", "--json"],
    ["ssh-config", "-p", "lab", "-l", "ops"], ["inventory", "-p", "lab"],
    ["inventory", "-p", "lab", "--format", "ini", "-l", "ops", "-i", "{lab}"],
    ["inventory", "-p", "lab", "-f", "json"])


def test_read_commands_agree(sides: Sides, cast: Cast, files: dict[str, Path]) -> None:
    up = sides.local("up", str(files["lab"]))
    assert up.code == 0, up
    for args in READS:
        same(sides, cast, *fill(args, files))
    config = sides.local("ssh-config", "-p", "lab", "-l", "ops")
    assert "Host lab.app\n    HostName 10.9.1.20\n    User ops\n" in config.out, config
    assert "# lab.web: no address known (running)" in config.out  # DHCP: no lease here
    inventory = sides.local("inventory", "-p", "lab", "-f", "ini")
    assert "\napp ansible_host=10.9.1.20 ansible_user=root " in inventory.out, inventory
    assert "\n[switch_front]\napp\nweb\n" in inventory.out


ERRORS = (
    (["validate", "{bad}"], 1), (["show", "{bad}"], 1),
    (["plan", "{bad}"], 1), (["up", "{bad}"], 1),
    (["build", "-f", "{bad}"], 1),
    (["validate", "{missing}"], 1), (["plan", "{missing}"], 1),
    (["start", "-p", "nothing"], 3), (["stop", "-p", "nothing"], 3),
    (["vm", "reboot", "nothing.web"], 3), (["vm", "reboot", "nodot"], 7),
    (["vm", "describe", "lab.nohost"], 3),
    (["vm", "mem-set", "lab.web", "lots"], 7),
    (["remove", "-p", "lab"], 4), (["start", "-p", "lab", "--all"], 7),
    (["vm", "migrate", "lab.web", "nowhere"], 3),
    (["template", "remove", "nothing"], 3),
    (["template", "build", "nothing"], 3),
    (["stop", "--all"], 4), (["suspend", "-p", "nothing"], 0),
    (["ssh", "lab.web"], 3), (["ssh", "lab.nohost"], 3), (["ssh", "nodot"], 7),
    (["ssh-config", "-p", "nothing"], 3), (["inventory", "-p", "nothing"], 3),
    (["inventory", "-p", "lab", "-f", "toml"], 64), (["inventory", "-p", "lab", "-l", "A B"], 7),
    (["ssh-config", "-p", "lab", "-l", "A B"], 7))


def test_errors_agree(sides: Sides, cast: Cast, files: dict[str, Path]) -> None:
    up = sides.local("up", str(files["lab"]))
    assert up.code == 0, up
    for args, code in ERRORS:
        local = same(sides, cast, *fill(args, files))
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
    (["vm", "suspend", "lab.web"], 0), (["vm", "restore", "lab.web"], 0),
    (["suspend", "-p", "lab"], 0), (["start", "-p", "lab"], 0),
    (["remove", "-p", "lab", "--yes"], 0), (["build", "-f", "{lab}"], 0),
    (["remove", "-p", "lab", "--yes"], 0),
)


@pytest.mark.parametrize("json", [False, True], ids=["text", "json"])
def test_changes_agree(sides: Sides, cast: Cast, files: dict[str, Path], json: bool) -> None:
    """Every step done locally from nothing back to nothing, then the same through
    the server: each step prints and exits the same."""
    steps = [(fill(step, files), code) for step, code in STEPS]
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


EVERY_VM = (["stop", "--all", "--yes"], ["start", "--all", "--yes"],
            ["suspend", "--all", "--yes", "--json"], ["start", "--all", "--yes", "--json"],
            ["vm", "migrate", "lab.web", "local"], ["vm", "migrate", "lab.web", "local", "--json"])


def test_every_vm_at_once_agrees(sides: Sides, cast: Cast, files: dict[str, Path]) -> None:
    """Stopped, started, suspended and started again, locally then through the server."""
    assert sides.local("up", str(files["lab"])).code == 0
    steps = EVERY_VM
    local = [sides.local(*args).masked() for args in steps]
    remote = [sides.remote(cast.tokens["admin"], *args).masked() for args in steps]
    for args, here, there in zip(steps, local, remote, strict=True):
        assert here.code == 0, (args, here)
        # VMs report in the order they finish.
        assert (there.code, sorted(there.out.splitlines()), there.err) == (
            here.code, sorted(here.out.splitlines()), here.err), (args, here, there)


# Commands that work on the machine they run on, and why.
LOCAL_ONLY = {
    "server": "it serves the site of this machine",
    "template add": "it registers image files of this machine",
    "rt": "it registers image files of this machine",
    "export": "it writes an archive on this machine",
    "import": "it reads an archive of this machine",
    "convert": "it reads and writes files of this machine",
}
# Commands compared through a server in a module of their own.
ELSEWHERE = {"vm console": "test_remote_console.py", "set": "test_remote_key_edit.py",
             "unset": "test_remote_key_edit.py"}


def _command_path(group: click.Group, args: list[str]) -> str:
    """The command ``args`` run: ``vm reboot`` of ``vm reboot lab.web``."""
    path: list[str] = []
    command: click.Command = group
    for arg in args:
        if not isinstance(command, click.Group) or arg not in command.commands:
            break
        command = command.commands[arg]
        path.append(arg)
    return " ".join(path)


def _every_command(group: click.Group, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= _every_command(command, f"{prefix}{name} ")
        else:
            found.add(f"{prefix}{name}")
    return found


def test_every_command_is_compared_through_a_server_or_refused() -> None:
    """A new command fails here until the tests above run it both ways, or it is
    listed as a command of this machine alone with the reason."""
    _register()
    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    compared = {_command_path(group, list(args)) for args in (
        *READS, *(a for a, _ in ERRORS), *(a for a, _ in STEPS), *ACCOUNT_STEPS, *EVERY_VM)}
    compared |= set(ELSEWHERE)
    every = _every_command(group)
    assert every - compared - set(LOCAL_ONLY) == set(), "commands no test runs through a server"
    assert set(LOCAL_ONLY) <= every and not set(LOCAL_ONLY) & compared


@pytest.mark.parametrize("args", [["server"], ["server", "--listen", "127.0.0.1:9"],
                                  ["template", "add", "base2", "disk.qcow2"],
                                  ["rt", "base2", "disk.qcow2"],
                                  ["export", "-p", "lab", "-d", "/var/tmp"],
                                  ["import", "-p", "lab", "-d", "/var/tmp", "--as", "lab9"],
                                  ["convert", "vhms.xml"]])
def test_commands_of_this_machine_are_refused_through_a_server(sides: Sides, cast: Cast,
                                                               args: list[str]) -> None:
    refused = sides.remote(cast.tokens["admin"], *args)
    name = args[0] if args[0] in ("server", "export", "import", "convert") else "template add"
    assert refused.code == 14 and refused.out == ""
    assert refused.err.startswith(f"error: `corral {name}` cannot run against a server "
                                  f"({sides.url}): ")
    assert "hint: run it on the server's machine, without --server" in refused.err


def test_hidden_and_read_only_projects_answer_as_locally_refused(
        sides: Sides, cast: Cast, files: dict[str, Path], lab: object) -> None:
    """Through the server a project of someone else is "not found" (exit 3), exactly as
    one that does not exist; a read-only sharer may look (the same output as the
    administrator's) but not change (exit 12)."""
    for args in (["status", "-p", "lab"], ["vm", "reboot", "lab.web"],
                 ["vm", "describe", "lab.web"], ["remove", "-p", "lab", "--yes"],
                 ["stop", "-p", "lab"], ["vm", "console", "lab.web"]):
        hidden = sides.remote(cast.tokens["other"], *args)
        assert (hidden.code, hidden.out, hidden.err) == (
            3, "", "error: project 'lab' not found\n"), args
    ghost = sides.remote(cast.tokens["other"], "status", "-p", "ghost")
    assert (ghost.code, ghost.out, ghost.err) == (3, "", "error: project 'ghost' not found\n")
    for args in (["status", "-p", "lab"], ["status", "-p", "lab", "--json"],
                 ["vm", "describe", "lab.web"], ["plan", "{lab}"]):
        looked = sides.remote(cast.tokens["reader"], *fill(args, files)).masked()
        assert looked == sides.local(*fill(args, files)).masked(), args
    for args in (["vm", "reboot", "lab.web"], ["up", "{lab}"], ["stop", "-p", "lab"],
                 ["remove", "-p", "lab", "--yes"], ["project", "share", "lab", "bob", "--read"]):
        refused = sides.remote(cast.tokens["reader"], *fill(args, files))
        assert refused.code == 12 and refused.out == "", (args, refused)
        assert refused.err.startswith("error: ") and "Traceback" not in refused.err


def test_several_projects_at_once_agree(sides: Sides, cast: Cast, files: dict[str, Path],
                                        tmp_path: Path) -> None:
    """``up`` of several files (one that does not load) and their removal, locally and
    through the server."""
    other = tmp_path / "lab2.corral"
    other.write_text(LAB.replace("project lab", "project lab2").replace("10.9.1.", "10.9.2."))
    steps = ([["up", str(files["lab"]), str(other), str(files["bad"])], 1],
             [["up", str(files["lab"]), str(other), "--json"], 0],
             [["remove", "-p", "lab", "--yes"], 0], [["remove", "-p", "lab2", "--yes"], 0])
    local = [sides.local(*args).masked() for args, _code in steps]
    remote = [sides.remote(cast.tokens["admin"], *args).masked() for args, _code in steps]
    for (args, code), here, there in zip(steps, local, remote, strict=True):
        assert here.code == code, (args, here)
        assert (there.code, there.out, sorted(there.err.splitlines())) == (
            here.code, here.out, sorted(here.err.splitlines())), (args, here, there)


def test_rootfs_reaches_the_server(sides: Sides, cast: Cast, files: dict[str, Path]) -> None:
    """``template build --rootfs`` sends ``rootfs``: the server refuses it for a qemu
    host (without it, the server would build that host's VM template)."""
    ran = sides.remote(cast.tokens["admin"], "template", "build", "debian", "--rootfs",
                       "--from-project", str(files["lab"]), "--host", "web")
    assert ran.code == 7, ran
    assert "error: lab.corral: host web is a qemu host; a rootfs template is for lxc hosts" \
        in ran.err

"""``corral user|token|project|audit`` run as a user runs them: text, JSON and exit codes.

The real entry point (``corral.cli.app.run``: argv in, exit code out) runs in
this process, which is many times faster than a child interpreter per command.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral.cli.app import run
from corral.state import StateStore


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


Corral = Callable[..., Ran]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    config = tmp_path / "corral.toml"
    config.write_text(f'[paths]\ntemplates = "{tmp_path}/t"\nstate = "{tmp_path}/s.db"\n'
                      f'runs = "{tmp_path}/r"\n')
    return config


@pytest.fixture
def corral(
    site: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Corral:
    def invoke(*args: str, stdin: str = "") -> Ran:
        monkeypatch.setattr(sys, "argv", ["corral", "--config", str(site), *args])
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        with pytest.raises(SystemExit) as done:
            run()
        out, err = capsys.readouterr()
        return Ran(int(done.value.code or 0), out, err)

    return invoke


def test_user_add_prints_the_token_once_and_list_never(corral: Corral) -> None:
    added = corral("user", "add", "alice", "--max-vms", "3", "--max-memory", "4G")
    assert added.returncode == 0, added.stderr
    lines = added.stdout.splitlines()
    assert lines[0] == "user alice added (VMs 3, memory 4096 MiB, vCPUs unlimited)"
    assert lines[1].startswith("token 1: crl_")
    assert lines[2] == "This token will not be shown again: store it now."
    token = lines[1].split(": ", 1)[1]

    as_json = corral("user", "add", "root2", "--admin", "--json")
    shown = json.loads(as_json.stdout)
    assert shown["admin"] is True and shown["token"].startswith("crl_")
    assert shown["token_id"] == 2 and shown["quota"]["max_vms"] is None

    listed = json.loads(corral("user", "list", "--json").stdout)
    assert [(u["name"], u["admin"], u["quota"]["max_memory_mib"]) for u in listed] == [
        ("alice", False, 4096), ("root2", True, None)]
    tokens = corral("token", "list", "--json")
    assert token not in tokens.stdout and shown["token"] not in tokens.stdout
    assert [(t["id"], t["user"], t["name"]) for t in json.loads(tokens.stdout)] == [
        (1, "alice", "first token"), (2, "root2", "first token")]
    assert token not in corral("token", "list").stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["user", "add", "alice"], 4, "error: user 'alice' exists already"),
        (["user", "add", "Alice"], 7, "invalid user name 'Alice'"),
        (["user", "add", "bob", "--max-vms", "many"], 7, "--max-vms 'many': give a whole number"),
        (["user", "remove", "nobody", "--yes"], 3, "user 'nobody' does not exist"),
        (["user", "remove", "alice"], 4, "refusing to remove without --yes"),
        (["user", "quota", "nobody"], 3, "user 'nobody' does not exist"),
        (["user", "passwd", "alice"], 7, "no terminal to ask the password on"),
        (["token", "create", "nobody"], 3, "user 'nobody' does not exist"),
        (["token", "revoke", "99"], 3, "token 99 not found"),
        (["token", "revoke", "x"], 64, "'x' is not a valid integer"),
        (["project", "share", "lab", "alice"], 64, "give exactly one of --read and --write"),
        (["project", "share", "lab", "alice", "--read", "--write"], 64, "exactly one"),
        (["project", "share", "nolab", "alice", "--read"], 3, "project 'nolab' not found"),
        (["project", "share", "lab", "nobody", "--read"], 3, "user 'nobody' does not exist"),
        (["project", "unshare", "lab", "alice"], 3, "project 'lab' is not shared with user"),
        (["audit", "--since", "soon"], 7, "since 'soon': give a time"),
    ],
)
def test_bad_requests_name_the_object_and_exit_with_its_code(
    corral: Corral, site: Path, args: list[str], code: int, message: str
) -> None:
    assert corral("user", "add", "alice").returncode == 0
    _record(site, "lab")
    result = corral(*args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def _record(site: Path, project: str) -> None:
    with StateStore(site.parent / "s.db") as store:
        store.record_project(project, f"/{project}.corral", '{"name": "lab", "hosts": {}}', "h")


def test_passwords_quota_tokens_shares_and_removal(corral: Corral, site: Path) -> None:
    corral("user", "add", "root2", "--admin")
    corral("user", "add", "alice")
    set_pw = corral("user", "passwd", "alice", "--password-stdin", stdin="long enough\n")
    assert set_pw.returncode == 0 and set_pw.stdout == "password of user alice set\n"
    short = corral("user", "passwd", "alice", "--password-stdin", stdin="short\n")
    assert short.returncode == 7 and "at least 8 characters" in short.stderr

    quota = corral("user", "quota", "alice", "--max-vcpus", "8", "--max-memory", "2048")
    assert quota.stdout == "user alice: VMs unlimited, memory 2048 MiB, vCPUs 8\n"
    cleared = corral("user", "quota", "alice", "--max-vcpus", "none", "--json")
    assert json.loads(cleared.stdout) == {"max_vms": None, "max_memory_mib": 2048,
                                          "max_vcpus": None}

    metrics = json.loads(corral("token", "create", "alice", "--name", "prom",
                                "--metrics-only", "--json").stdout)
    assert (metrics["scope"], metrics["name"], metrics["user"]) == ("metrics", "prom", "alice")
    revoked = corral("token", "revoke", str(metrics["id"]))
    assert revoked.stdout == f"token {metrics['id']} of alice revoked\n"
    (listed,) = [t for t in json.loads(corral("token", "list", "alice", "--json").stdout)
                 if t["id"] == metrics["id"]]
    assert listed["revoked_at"] is not None

    _record(site, "lab")
    assert corral("project", "share", "lab", "alice", "--write").stdout == (
        "project lab shared with alice (write)\n")
    shares = json.loads(corral("project", "shares", "lab", "--json").stdout)
    assert shares["owner"] is None
    assert [(s["user"], s["access"]) for s in shares["shares"]] == [("alice", "write")]

    removed = corral("user", "remove", "alice", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert "2 token(s) deleted, 1 share(s) withdrawn" in removed.stdout
    last = corral("user", "remove", "root2", "--yes")
    assert last.returncode == 4 and "user 'root2' is the last administrator" in last.stderr


def test_audit_lists_what_was_done_filtered(corral: Corral) -> None:
    corral("user", "add", "alice")
    corral("user", "add", "alice")
    entries = json.loads(corral("audit", "--json", "--since", "1h").stdout)
    assert [(e["action"], e["target"], e["result"], e["source"]) for e in entries] == [
        ("user.add", "alice", "error", "local"), ("user.add", "alice", "ok", "local")]
    assert set(entries[0]) == {"id", "at", "user", "source", "action", "target", "result",
                               "detail"}
    assert len(json.loads(corral("audit", "--json", "--limit", "1").stdout)) == 1
    assert json.loads(corral("audit", "--json", "--user", "nobody").stdout) == []
    table = corral("audit", "--user", entries[0]["user"])
    assert table.returncode == 0 and "user 'alice' exists already" in table.stdout

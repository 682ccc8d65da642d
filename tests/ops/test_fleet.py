"""``stop/suspend/start --all``: every VM of every project, a silent service host failing alone."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

from corral.backends.base import DomainState
from corral.cli.app import _register, app
from corral.cli.errors import run_guarded
from corral.ops import fleet, projects


def project_file(tmp_path: Path, name: str, hosts: int) -> Path:
    text = f"global {{ project {name} }}\nswitch lan {{ }}\n" + "".join(
        f"host h{i} {{\n template base\n qemu\n wait none\n network eth0 {{ switch lan }}\n}}\n"
        for i in range(hosts)
    )
    path = tmp_path / f"{name}.corral"
    path.write_text(text)
    return path


def states(session) -> dict[str, DomainState]:
    return {
        f"{d.project}.{d.host}": d.state
        for d in session.backend("local").observe(None).domains
    }


def test_stop_suspend_and_start_every_vm_of_every_project(session, tmp_path) -> None:
    projects.up(session, project_file(tmp_path, "fa", 2), wait=False)
    projects.up(session, project_file(tmp_path, "fb", 1), wait=False)
    names = {"fa.h0", "fa.h1", "fb.h0"}

    suspended = fleet.act_on_all(session, "suspend")
    assert not suspended.partial, suspended.failed
    assert {f"{d.project}.{d.host}" for d in suspended.done} == names
    assert set(states(session).values()) == {DomainState.SUSPENDED}

    started = fleet.act_on_all(session, "start")
    assert {(f"{d.project}.{d.host}", d.outcome) for d in started.done} == {
        (n, "started") for n in names
    }
    assert set(states(session).values()) == {DomainState.RUNNING}

    stopped = fleet.act_on_all(session, "stop", timeout_s=0.1)
    assert {f"{d.project}.{d.host}" for d in stopped.done} == names
    assert set(states(session).values()) == {DomainState.SHUTOFF}
    ops = [op.action for op in session.store.operations("fa")]
    assert {"suspend --all", "start --all", "stop --all"} <= set(ops)

    again = fleet.act_on_all(session, "stop")
    assert again.done == () and not again.partial  # nothing left running


def test_one_project_only_and_a_silent_service_host_fails_alone(session, tmp_path) -> None:
    projects.up(session, project_file(tmp_path, "fc", 1), wait=False)
    projects.up(session, project_file(tmp_path, "fd", 1), wait=False)
    only = fleet.act_on_all(session, "suspend", project="fc")
    assert [f"{d.project}.{d.host}" for d in only.done] == ["fc.h0"]
    survey = fleet.survey(session)
    broken = fleet.Fleet(survey.vms, {"service host far": "no answer within 10 s"})
    result = fleet.act_on_all(session, "stop", timeout_s=0.1, fleet=broken)
    assert result.partial and result.failed == {"service host far": "no answer within 10 s"}
    assert [f"{d.project}.{d.host}" for d in result.done] == ["fd.h0"]


def test_the_command_refuses_without_a_terminal_or_yes(session, tmp_path) -> None:
    config = Path(session.site.paths.state).parent / "corral.toml"
    for argv in (["stop", "--all"], ["suspend", "--all"], ["start", "--all"]):
        done = subprocess.run(
            [sys.executable, "-m", "corral", "--config", str(config), *argv],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
        )
        assert done.returncode == 4, (argv, done.stderr)
        assert "pass --yes" in done.stderr
    both = subprocess.run(
        [sys.executable, "-m", "corral", "--config", str(config), "stop", "--all", "-p", "x"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )
    assert both.returncode == 7 and "either -p PROJECT or --all" in both.stderr


class Terminal(io.StringIO):
    """Standard input that is a terminal, holding what its user types."""

    def isatty(self) -> bool:
        return True


def command(config: Path, *args: str, stdin: io.StringIO) -> tuple[int, str, str]:
    """``corral --config CONFIG ARGS`` in this process (so on this test's libvirt test
    driver), ``stdin`` as its standard input: exit code, stdout, stderr."""
    _register()
    out, err = io.StringIO(), io.StringIO()
    with mock.patch("sys.stdin", stdin), redirect_stdout(out), redirect_stderr(err):
        code = run_guarded(lambda: app(args=["--config", str(config), *args],
                                       prog_name="corral", standalone_mode=False))
    return code, out.getvalue(), err.getvalue()


def test_the_command_asks_at_a_terminal_and_acts_only_on_yes(session, tmp_path) -> None:
    config = Path(session.site.paths.state).parent / "corral.toml"
    projects.up(session, project_file(tmp_path, "fe", 2), wait=False)
    projects.up(session, project_file(tmp_path, "ff", 1), wait=False)
    code, out, err = command(config, "stop", "--all", stdin=Terminal("n\n"))
    assert code != 0 and "stop all 3 Corral VM(s) on 1 service host(s)? [y/N]" in out + err
    assert "aborted: nothing was changed" in err
    assert set(states(session).values()) == {DomainState.RUNNING}
    code, out, err = command(config, "stop", "--all", stdin=Terminal("y\n"))
    assert code == 0, err
    assert set(states(session).values()) == {DomainState.SHUTOFF}
    code, out, err = command(config, "start", "--all", "--yes", stdin=io.StringIO())
    assert code == 0, err  # --yes: no terminal needed, nothing asked
    assert "[y/N]" not in out + err
    assert set(states(session).values()) == {DomainState.RUNNING}

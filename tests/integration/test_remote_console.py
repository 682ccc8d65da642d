"""Readiness and the console on a remote service host (a fake host over TLS): the guest
on h1 is ready by its console line, read through libvirt (not a local file), and
``corral vm log`` / ``corral vm console`` work there too."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .fakehosts import FakeHosts
from .support import REPO, cli_env, project_name, write_project

pytestmark = pytest.mark.libvirt


def test_a_remote_guest_is_ready_by_its_console_and_shows_it(
    three_hosts: FakeHosts, tmp_path: Path
) -> None:
    name = project_name()
    text = (
        f"global {{ project {name} }}\n"
        "host far {\n    template tiny\n    qemu\n    memory 96M\n"
        "    service_host h1\n    wait console 600\n}\n"
    )
    path = write_project(tmp_path / "far.corral", text)
    try:
        info = three_hosts.corral("info", "-s", "h1", "--json")
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["capabilities"]["console_log"] is True

        up = three_hosts.corral("up", str(path), "--json", timeout=900)
        assert up.returncode == 0, up.stdout + up.stderr
        (ready,) = json.loads(up.stdout)["readiness"]
        assert (ready["ready"], ready["reason"]) == (True, "corral-ready on the console")

        shown = three_hosts.corral("vm", "log", f"{name}.far")
        assert shown.returncode == 0, shown.stderr
        assert "corral-ready far\n" in shown.stdout.replace("\r", ""), shown.stdout[-800:]
        # h1's runs directory is its own: the log is not on this machine's.
        site_runs = three_hosts.state / "site" / "runs" / name
        assert not (site_runs / "far-console.log").exists()

        # The interactive console attaches through the TLS URI (pkipath and all).
        command = shlex.join([sys.executable, "-m", "corral", "--config",
                              str(three_hosts.toml), "vm", "console", f"{name}.far"])
        attached = subprocess.run(
            ["timeout", "15", "script", "-qec", command, "/dev/null"],
            capture_output=True, text=True, timeout=60, check=False,
            env={**cli_env(), "PYTHONPATH": str(REPO)}, stdin=subprocess.DEVNULL,
        )
        assert f"Connected to domain '{name}-far'" in attached.stdout, (
            attached.stdout + attached.stderr
        )
    finally:
        three_hosts.corral("remove", "-p", name, "--yes", timeout=300)

"""The CLI's JSON results, exit codes and the project lock, through the real program.

Each ``corral`` run is its own process with its own ``test:///default``
driver (which starts empty), sharing only the site's template registry and
state database: enough to see the JSON shapes and the lock across processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from corral.state import Claimant, StateStore
from corral.state.lock import process_started

PROJECT = """global { project clijson }
switch lan { address 10.9.7.1/24 }
host web {
    template base
    qemu
    memory 96M
    maxmem 256M
    wait none
    network eth0 { switch lan
        address dhcp }
}
"""


def corral(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", "--config", str(config), *args],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    config = tmp_path / "corral.toml"
    config.write_text(
        f'[paths]\ntemplates = "{tmp_path}/t"\nstate = "{tmp_path}/s.db"\n'
        f'runs = "{tmp_path}/r"\n[service_hosts.local]\nuri = "test:///default"\n'
    )
    disk = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    added = corral(config, "template", "add", "base", str(disk))
    assert added.returncode == 0, added.stderr
    return config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "clijson.corral"
    path.write_text(PROJECT)
    return path


def test_up_json_describes_actions_and_readiness(site: Path, project: Path) -> None:
    result = corral(site, "up", str(project), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["operation"], data["project"], data["ok"], data["changed"]) == (
        "up", "clijson", True, True,
    )
    assert [(a["kind"], a["target"]) for a in data["actions"]] == [
        ("create-switch", "lan"), ("create-host", "web"),
    ]
    assert data["started"] == ["web"]
    (ready,) = data["readiness"]
    assert ready == {"host": "web", "domain": "clijson-web", "ready": True,
                     "reason": "not waited for", "seconds": 0.0, "started_s": 0.0}
    assert data["warnings"] == []


def test_upgrade_and_build_json(site: Path, project: Path) -> None:
    for command in ("upgrade", "build"):
        result = corral(site, command, "-f", str(project), "--json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["operation"] == command and data["readiness"] == []
        assert {a["target"] for a in data["actions"]} == {"lan", "web"}


def test_plan_exit_code_tells_changes_from_errors(site: Path, project: Path, tmp_path) -> None:
    assert corral(site, "plan", str(project)).returncode == 9
    planned = corral(site, "plan", str(project), "--json")
    assert planned.returncode == 9, planned.stderr
    data = json.loads(planned.stdout)
    assert (data["project"], data["empty"]) == ("clijson", False)
    assert [(a["kind"], a["target"]) for a in data["actions"]] == [
        ("create-switch", "lan"), ("create-host", "web"),
    ]
    bad = tmp_path / "bad.corral"
    bad.write_text("global { project p }\nhost a { memroy 1G }\n")
    assert corral(site, "plan", str(bad)).returncode == 1
    broken_site = tmp_path / "broken.toml"
    broken_site.write_text("[defaults]\nmemroy = 1\n")
    assert corral(broken_site, "plan", str(project)).returncode == 2
    helped = corral(site, "plan", "--help")
    assert "9  plan: there are changes to make" in helped.stdout
    assert "2  site configuration error" in helped.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("vm", "reboot", "nodot"), 7),
        (("vm", "reboot", "bad name.web"), 7),
        (("vm", "mem-set", "lab.web", "lots"), 7),
        (("vm", "vcpu-set", "lab.web", "0"), 7),
        (("stop", "-p", "lab", "--timeout", "-1"), 7),
        (("vm", "reboot", "lab.web"), 3),
        (("status", "-p", "no/such"), 7),
    ],
)
def test_invalid_requests_have_their_own_code(site: Path, args, code) -> None:
    result = corral(site, *args)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: ")


def test_a_locked_project_is_refused_with_the_holder_named(site: Path, project, tmp_path):
    holder = subprocess.Popen(["sleep", "60"])
    try:
        claimant = replace(Claimant.this_process(), pid=holder.pid,
                           pid_started=process_started(holder.pid))
        with StateStore(tmp_path / "s.db") as store:
            assert store.acquire_lock("clijson", "upgrade", claimant) is None
        refused = corral(site, "up", str(project), "--no-wait-lock")
        assert refused.returncode == 4, refused.stderr
        assert f"project 'clijson' is locked by {claimant.holder} (pid {holder.pid}, " \
               "corral upgrade) since " in refused.stderr
    finally:
        holder.kill()
        holder.wait()
    taken = corral(site, "up", str(project), "--no-wait-lock", "--json")
    assert taken.returncode == 0, taken.stderr
    assert any("taken over" in w for w in json.loads(taken.stdout)["warnings"])


def test_info_shows_what_the_service_host_can_do_live(site: Path) -> None:
    result = corral(site, "info", "--json")
    assert result.returncode == 0, result.stderr
    caps = json.loads(result.stdout)["capabilities"]
    assert caps["driver"] == "TEST" and caps["live_memory"] and not caps["live_nics"]
    assert caps["max_vcpus"] > 1 and caps["virt_types"] == ["qemu"]

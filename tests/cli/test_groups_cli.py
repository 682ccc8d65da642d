"""Groups through the real ``corral`` program: show --json, status -g and the vm
verbs on PROJECT.@GROUP, with their exit codes.

Each run is its own process with its own empty ``test:///default`` driver,
sharing the site's state database: the recorded project (and so its groups)
outlives the process, its domains do not. A member no service host has shows
as ``absent`` in status, and a verb on it fails alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = """global { project grp }
group cluster { members n1 n2
    memory 96M
    maxmem 256M }
host n1 { template base
    qemu
    wait none }
host n2 { template base
    qemu
    wait none }
host solo { template base
    qemu
    wait none }
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
def recorded(site: Path, tmp_path: Path) -> Path:
    """The site, with the project recorded by an ``up``."""
    path = tmp_path / "grp.corral"
    path.write_text(PROJECT)
    shown = json.loads(corral(site, "show", str(path), "--json").stdout)
    assert shown["groups"] == {"cluster": ["n1", "n2"]}
    assert shown["hosts"]["n1"]["memory_mib"] == 96
    text = corral(site, "show", str(path)).stdout
    assert "cluster" in text and "n1 n2" in text
    up = corral(site, "up", str(path))
    assert up.returncode == 0, up.stderr
    return site


def test_status_of_a_group_lists_its_members(recorded: Path) -> None:
    result = corral(recorded, "status", "-p", "grp", "-g", "cluster", "--json")
    assert result.returncode == 0, result.stderr
    assert [(r["project"], r["host"]) for r in json.loads(result.stdout)["rows"]] == [
        ("grp", "n1"), ("grp", "n2")]
    text = corral(recorded, "status", "-p", "grp", "-g", "cluster")
    assert "n1" in text.stdout and "solo" not in text.stdout


def test_status_of_an_unknown_group_or_without_project(recorded: Path) -> None:
    unknown = corral(recorded, "status", "-p", "grp", "-g", "clutser")
    assert unknown.returncode == 3
    assert "project 'grp' has no group 'clutser'" in unknown.stderr
    assert "its groups: cluster" in unknown.stderr
    alone = corral(recorded, "status", "-g", "cluster")
    assert alone.returncode == 7
    assert "group 'cluster' needs its project" in alone.stderr
    assert "Traceback" not in unknown.stderr + alone.stderr


def test_vm_verbs_take_a_group(recorded: Path) -> None:
    """Each member is looked for (this process's driver has none): each fails alone."""
    result = corral(recorded, "vm", "reboot", "grp.@cluster")
    assert result.returncode == 10, result.stderr
    assert "grp.n1" in result.stdout + result.stderr and "grp.n2" in result.stdout + result.stderr
    assert "grp.solo" not in result.stdout + result.stderr
    memory = corral(recorded, "vm", "mem-set", "grp.@cluster", "128M")
    assert memory.returncode == 10, memory.stderr
    unknown = corral(recorded, "vm", "pause", "grp.@nope")
    assert unknown.returncode == 3
    assert "project 'grp' has no group 'nope'" in unknown.stderr
    one_vm = corral(recorded, "vm", "describe", "grp.@cluster")
    assert one_vm.returncode == 7
    assert "names a group of VMs, and this acts on one VM" in one_vm.stderr


def test_conflicting_groups_are_a_positioned_error(tmp_path: Path, site: Path) -> None:
    path = tmp_path / "bad.corral"
    path.write_text("global { project p }\ngroup a { members h\n vcpus 2 }\n"
                    "group b { members h\n vcpus 3 }\nhost h { }\n")
    result = corral(site, "validate", str(path))
    assert result.returncode == 1
    assert (f"{path}:5:2: error: groups 'a' (at {path}:3:2) and 'b' set 'vcpus' "
            "differently") in result.stderr
    assert "Traceback" not in result.stderr

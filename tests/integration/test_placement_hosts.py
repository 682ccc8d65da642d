"""The scheduler on three real service hosts (fake hosts over TLS): six hosts
that name no service host spread 2/2/2 over h1..h3, and an upgrade that adds
a seventh leaves the six where they are."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from .fakehosts import FakeHosts
from .support import project_name

pytestmark = pytest.mark.libvirt


def _site_without_local(hosts: FakeHosts, path: Path) -> FakeHosts:
    """The harness's site config with ``local`` (shared with other work on this
    machine) out of scheduling, so only h1..h3 are chosen from."""
    text = hosts.toml.read_text()
    local = '[service_hosts.local]\nuri = "qemu:///system"\n'
    assert local in text
    path.write_text(text.replace(local, local + "schedule = false\n"))
    return replace(hosts, toml=path)


def _project(path: Path, name: str, count: int) -> Path:
    hosts = "".join(f"host n{i} {{ template tiny; wait none }}\n" for i in range(1, count + 1))
    path.write_text(f"global {{ project {name} }}\n{hosts}")
    return path


def _placement(hosts: FakeHosts, name: str) -> dict[str, str]:
    status = hosts.corral("status", "-p", name, "--json", "--timeout", "120")
    assert status.returncode == 0, status.stdout + status.stderr
    return {row["host"]: row["service_host"] for row in json.loads(status.stdout)["rows"]}


def test_six_hosts_spread_over_three_and_stay_put(three_hosts: FakeHosts, tmp_path: Path) -> None:
    hosts = _site_without_local(three_hosts, tmp_path / "corral.toml")
    name = project_name()
    path = _project(tmp_path / "spread.corral", name, 6)
    try:
        built = hosts.corral("build", "-f", str(path))
        assert built.returncode == 0, built.stdout + built.stderr
        first = _placement(hosts, name)
        assert Counter(first.values()) == {"h1": 2, "h2": 2, "h3": 2}
        plan = hosts.corral("plan", str(_project(path, name, 7)), "--json")
        assert plan.returncode == 9, plan.stdout + plan.stderr
        (action,) = json.loads(plan.stdout)["actions"]
        assert (action["kind"], action["target"]) == ("create-host", "n7")
        assert action["reason"] == f"on {action['service_host']}, chosen by the scheduler (spread)"
        upgraded = hosts.corral("upgrade", "-f", str(path))
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
        second = _placement(hosts, name)
        assert {h: second[h] for h in first} == first
        assert second["n7"] in {"h1", "h2", "h3"}
    finally:
        removed = hosts.corral("remove", "-p", name, "--yes")
        assert removed.returncode == 0, removed.stdout + removed.stderr

"""A project across fake service hosts h1..h3, one of them down or hanging.

``up`` with h3's daemons killed (``scripts/fake-hosts stop-host h3``) brings
up the VMs of h1 and h2 and fails only h3's, with its name and libvirt's
reason and the partial exit code; ``status`` shows h3's VM as unknown; once
h3 is back (``start-host h3``) the same ``up`` finishes the job and ``status``
shows every VM on its service host under a row per service host. A libvirtd
that is stopped (SIGSTOP: connections hang) never makes ``status --timeout 2``
wait longer than its timeout.

The same holds when h3 dies in the middle of an ``up``: its backend kills it
(``stop-host h3``) when the ``up`` first defines a domain there, after h3's
network, pool and volumes were made; h3's VM fails with h3's name and
libvirt's reason, the others come up, and once h3 is back a rerun of ``up``
finishes over what the first one left on h3.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from corral.backends.base import Backend
from corral.config import parse_site_config
from corral.ops import projects
from corral.ops.session import Session

from .fakehosts import FakeHosts

pytestmark = pytest.mark.libvirt

PROJECT = """
global { project hrun }
superclass node {
    template tiny
    memory 96M
}
# One switch per service host: a LAN across them needs site bridges.
switch lan1 { address 10.249.7.1/24 }
switch lan2 { address 10.249.8.1/24 }
switch lan3 { address 10.249.9.1/24 }
host a { superclass node; service_host h1; network eth0 { switch lan1; address dhcp } }
host b { superclass node; service_host h2; network eth0 { switch lan2; address dhcp } }
host c { superclass node; service_host h3; network eth0 { switch lan3; address dhcp } }
"""
PLACED = {"a": "h1", "b": "h2", "c": "h3"}
# The same shape under another name and subnets, for the host killed mid-``up``.
MIDWAY = (PROJECT.replace("project hrun", "project hmid")
          .replace("10.249.7.", "10.249.17.").replace("10.249.8.", "10.249.18.")
          .replace("10.249.9.", "10.249.19."))


def libvirtd_of(hosts: FakeHosts, name: str) -> int:
    """The pid of fake host ``name``'s libvirtd (in its network namespace)."""
    holder = int(str(hosts.record(name)["holder"]))
    target = os.stat(f"/proc/{holder}/ns/net")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(entry / "ns" / "net")
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if (st.st_ino, st.st_dev) == (target.st_ino, target.st_dev) and comm == "libvirtd":
            return int(entry.name)
    raise AssertionError(f"no libvirtd in {name}")


class Tripwire:
    """A service host's backend that calls ``trip`` once, the first time ``method``
    is called, before passing that call on; every call it passes on is logged."""

    def __init__(self, backend: Backend, method: str, trip: Callable[[], object]) -> None:
        self._backend = backend
        self._method = method
        self._trip = trip
        self._lock = threading.Lock()
        self.tripped = threading.Event()
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> object:
        found = getattr(self._backend, name)
        if not callable(found):
            return found

        def call(*args: object, **kwargs: object) -> object:
            with self._lock:
                self.calls.append(name)
                trip = name == self._method and not self.tripped.is_set()
                if trip:
                    self.tripped.set()
            if trip:
                self._trip()
            return found(*args, **kwargs)

        return call


def status_json(
    hosts: FakeHosts, *args: str, project: str = "hrun"
) -> tuple[str, dict[str, list[dict[str, object]]]]:
    """``status --json``: its exit code and stderr as one string, and the JSON."""
    shown = hosts.corral("status", "-p", project, "--json", *args)
    return f"{shown.returncode} {shown.stderr}".strip(), json.loads(shown.stdout)


def test_a_host_down_fails_only_its_vms_and_a_rerun_finishes(
    three_hosts: FakeHosts, tmp_path: Path
) -> None:
    project = tmp_path / "hrun.corral"
    project.write_text(PROJECT)
    stopped = three_hosts.script("stop-host", "h3")
    assert stopped.returncode == 0, stopped.stderr
    try:
        up = three_hosts.corral("up", str(project), "--json")
        assert up.returncode == 10, up.stdout + up.stderr
        result = json.loads(up.stdout)
        assert result["partial"] is True
        (failed,) = result["failed"]
        assert (failed["kind"], failed["name"], failed["service_host"]) == ("host", "c", "h3")
        assert "cannot connect to service host 'h3'" in failed["reason"], failed
        assert sorted(result["started"]) == ["a", "b"]
        assert all(r["ready"] for r in result["readiness"]), result["readiness"]

        code, shown = status_json(three_hosts, "--timeout", "5")
        assert code.startswith("5 "), code
        states = {r["host"]: (r["service_host"], r["state"]) for r in shown["rows"]}
        assert states == {"a": ("h1", "running"), "b": ("h2", "running"), "c": ("h3", "unknown")}
        h3 = next(h for h in shown["service_hosts"] if h["name"] == "h3")
        assert h3["state"] == "unknown" and h3["vms"] == 1 and h3["error"]
    finally:
        back = three_hosts.script("start-host", "h3")
        assert back.returncode == 0, back.stderr
    try:
        again = three_hosts.corral("up", str(project))
        assert again.returncode == 0, again.stdout + again.stderr
        assert "started c" in again.stdout

        code, shown = status_json(three_hosts, "--timeout", "30")
        assert code == "0", code
        assert {r["host"]: r["service_host"] for r in shown["rows"]} == PLACED
        assert {r["state"] for r in shown["rows"]} == {"running"}
        service = {h["name"]: h for h in shown["service_hosts"]}
        assert sorted(service) == ["h1", "h2", "h3", "local"]
        for name in ("h1", "h2", "h3"):
            row = service[name]
            assert (row["state"], row["vms"]) == ("up", 1), row
            assert row["cpus"] and row["memory_used_mib"] and row["uptime_s"], row
            assert row["cpu_percent"] is not None and 0 <= row["cpu_percent"] <= 100
        table = three_hosts.corral("status", "-p", "hrun")
        lines = table.stdout.splitlines()
        for host, name in PLACED.items():  # each VM's row follows its service host's
            at = next(i for i, line in enumerate(lines) if "service host" in line
                      and f" {name} " in line)
            assert f" {host} " in lines[at + 1] and "running" in lines[at + 1], table.stdout

        frozen = libvirtd_of(three_hosts, "h2")
        os.kill(frozen, signal.SIGSTOP)
        try:
            began = time.monotonic()
            code, shown = status_json(three_hosts, "--timeout", "2")
            took = time.monotonic() - began
        finally:
            os.kill(frozen, signal.SIGCONT)
        assert code.startswith("5 ") and took < 12, (code, took)  # 2 s, plus starting Python
        states = {r["host"]: r["state"] for r in shown["rows"]}
        assert states == {"a": "running", "b": "unknown", "c": "running"}
        h2 = next(h for h in shown["service_hosts"] if h["name"] == "h2")
        assert h2["error"] == "no answer within 2 s"
    finally:
        removed = three_hosts.corral("remove", "-p", "hrun", "--yes")
        assert removed.returncode == 0, removed.stdout + removed.stderr


def test_a_host_killed_mid_up_fails_only_its_vms_and_a_rerun_finishes(
    three_hosts: FakeHosts, tmp_path: Path
) -> None:
    """A service host that dies while ``up`` works on it (not only one down before
    it starts) must fail just its own VMs, named with it and a reason, while the
    other hosts' VMs come up; what it left half made must not stop a rerun."""
    project = tmp_path / "hmid.corral"
    project.write_text(MIDWAY)
    site = parse_site_config(three_hosts.toml.read_text(), three_hosts.toml)

    def kill_h3() -> None:
        stopped = three_hosts.script("stop-host", "h3")
        assert stopped.returncode == 0, stopped.stderr

    real = Session(site)  # the real backends; h3's is reached through the wire
    wire = Tripwire(real.backend("h3"), "define_domain", kill_h3)

    def backend(name: str, _uri: str, _runs: Path) -> Backend:
        return cast(Backend, wire) if name == "h3" else real.backend(name)

    try:
        try:
            with real, Session(site, backend_factory=backend) as session:
                result = projects.up(session, project)
            assert wire.tripped.is_set(), f"up never defined a domain on h3: {wire.calls}"
            assert "create_run_copy" in wire.calls, wire.calls  # h3 was part-built when it died
            assert result.partial
            (failed,) = result.failed
            assert (failed.kind, failed.name, failed.service_host) == ("host", "c", "h3")
            assert "cannot define domain hmid-c: " in failed.reason, failed  # then libvirt's words
            assert "service host h3" in failed.describe()
            assert sorted(result.started) == ["a", "b"]
            assert sorted(r.host for r in result.readiness) == ["a", "b"]
            assert all(r.ready for r in result.readiness), result.readiness
            code, shown = status_json(three_hosts, "--timeout", "5", project="hmid")
            assert code.startswith("5 "), code
            states = {r["host"]: (r["service_host"], r["state"]) for r in shown["rows"]}
            assert states == {
                "a": ("h1", "running"), "b": ("h2", "running"), "c": ("h3", "unknown")}
        finally:
            if wire.tripped.is_set():
                back = three_hosts.script("start-host", "h3")
                assert back.returncode == 0, back.stderr
        again = three_hosts.corral("up", str(project), "--json")
        assert again.returncode == 0, again.stdout + again.stderr
        rerun = json.loads(again.stdout)
        assert rerun["failed"] == [] and rerun["partial"] is False, rerun
        assert rerun["started"] == ["c"], rerun
        (action,) = rerun["actions"]  # c is built over the volumes the killed up made
        assert (action["kind"], action["target"]) == ("create-host", "c"), action
        assert "interrupted build" in action["reason"], action
        assert all(r["ready"] for r in rerun["readiness"]), rerun["readiness"]
        code, shown = status_json(three_hosts, "--timeout", "30", project="hmid")
        assert code == "0", code
        assert {r["host"]: (r["service_host"], r["state"]) for r in shown["rows"]} == {
            host: (name, "running") for host, name in PLACED.items()}
    finally:
        removed = three_hosts.corral("remove", "-p", "hmid", "--yes")
        assert removed.returncode == 0, removed.stdout + removed.stderr

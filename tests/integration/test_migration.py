"""Moving VMs between fake service hosts: live (shared storage, copied disks), cold,
``corral vm migrate`` editing the project file, and a move that fails.

One project of two tiny guests on h1: ``shared`` keeps its volumes on the
directory every fake host sees (``filepath``), ``private`` in h1's own runs
directory. No reboot is proved by the guest itself (``/proc/uptime`` read on
its serial console before and after) and by its console log (``corral vm
log``), which holds the current boot only: before a live move it shows the
one ``corral-ready`` line (the guest prints it once per boot); after it, on
the target, it still shows that one line, followed by what the console
printed there since (an uptime read): the move carried the log over.
A guest that really booted again (``--offline``) prints that line again on
the target, and its uptime is shorter than the move took.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from .fakehosts import FakeHosts
from .guest_console import GuestConsole
from .support import REPO, cli_env, wait_for

pytestmark = pytest.mark.libvirt

BOOT_LINE = "corral-ready"  # what the tiny guest prints once per boot (its kernel is quiet)
SERVICE_HOSTS = ("h1", "h2", "h3")


@dataclass(frozen=True)
class Lab:
    hosts: FakeHosts
    name: str
    file: Path

    def domain(self, host: str) -> str:
        return f"{self.name}-{host}"

    def corral(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.hosts.corral(*args)

    def where(self) -> dict[str, tuple[str, str]]:
        """host -> (service host, state), as ``corral status`` reports them."""
        result = self.corral("status", "-p", self.name, "--json", "--timeout", "120")
        assert result.returncode == 0, result.stdout + result.stderr
        rows = json.loads(result.stdout)["rows"]
        return {r["host"]: (r["service_host"], r["state"]) for r in rows}

    def console_log(self, host: str) -> str:
        """What the guest printed in its current boot (``corral vm log``, read
        through libvirt on the service host it runs on)."""
        result = self.corral("vm", "log", f"{self.name}.{host}")
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def uptime(self, service_host: str, host: str) -> float:
        """The guest's own uptime in seconds, read on its serial console."""
        with GuestConsole(self.domain(host), self.hosts.uris[service_host]) as console:
            return float(console.run("cat /proc/uptime").split()[0])

    def volumes(self, service_host: str, host: str) -> list[str]:
        """The host's volumes in the project's pools on ``service_host``."""
        conn = libvirt.open(self.hosts.uris[service_host])
        found = []
        try:
            for pool in conn.listAllStoragePools(0):
                if not pool.name().startswith(f"corral-{self.name}") or not pool.isActive():
                    continue
                pool.refresh(0)
                found += [v.name() for v in pool.listAllVolumes(0)
                          if v.name().startswith((f"{host}.", f"{host}-"))]
        finally:
            conn.close()
        return sorted(found)

    def corral_with(self, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI with another site config than the harness's."""
        return subprocess.run(
            [sys.executable, "-m", "corral", "--config", str(config), *args],
            capture_output=True, text=True, timeout=300, check=False,
            env={**cli_env(), "PYTHONPATH": str(REPO)}, stdin=subprocess.DEVNULL,
        )


def _project(name: str, shared: Path, placement: dict[str, str]) -> str:
    return f"""\
global {{
    project {name}
}}
superclass guest {{
    template tiny
}}
# volumes on the directory every service host sees
host shared {{
    superclass guest
    service_host {placement["shared"]}
    filepath {shared}
    network eth0 {{
        switch swshared
        address dhcp
    }}
}}
host private {{
    superclass guest
    service_host {placement["private"]}
    network eth0 {{
        switch swprivate
        address dhcp
    }}
}}
# a switch each: one switch over two service hosts needs site bridges
switch swshared {{ address 10.{200 + secrets.randbelow(40)}.{secrets.randbelow(250)}.1/24 }}
switch swprivate {{ address 10.{200 + secrets.randbelow(40)}.{secrets.randbelow(250)}.1/24 }}
"""


@pytest.fixture(scope="module")
def lab(three_hosts: FakeHosts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    name = f"mig{secrets.token_hex(2)}"
    shared = three_hosts.state / "shared"
    file = tmp_path_factory.mktemp("migration") / "lab.corral"
    file.write_text(_project(name, shared, {"shared": "h1", "private": "h1"}))
    lab = Lab(three_hosts, name, file)
    try:
        result = lab.corral("up", str(file))
        assert result.returncode == 0, result.stdout + result.stderr
        yield lab
    finally:
        removed = lab.corral("remove", "-p", name, "--yes")
    # every service host the guests passed through lets go of the shared directory
    assert removed.returncode == 0, removed.stdout + removed.stderr


def test_upgrade_moves_running_guests_live_without_a_reboot(lab: Lab) -> None:
    before = {h: lab.uptime("h1", h) for h in ("shared", "private")}
    for host in ("shared", "private"):  # the log is read for real: it holds the one boot
        assert lab.console_log(host).count(f"{BOOT_LINE} {host}") == 1
    lab.file.write_text(lab.file.read_text().replace("service_host h1", "service_host h2"))

    result = lab.corral("upgrade", "-f", str(lab.file), "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    actions = json.loads(result.stdout)["actions"]
    assert {(a["kind"], a["target"]) for a in actions} == {
        ("migrate-host", "shared"), ("migrate-host", "private"),
        ("update-switch", "swshared"), ("update-switch", "swprivate"),  # they follow
    }
    for action in actions:
        if action["kind"] != "migrate-host":
            continue
        assert action["changes"] == [
            {"field": "service_host", "old": "h1", "new": "h2", "applied": "live"}
        ]
    assert lab.where() == {"shared": ("h2", "running"), "private": ("h2", "running")}
    for host in ("shared", "private"):
        described = lab.corral("vm", "describe", f"{lab.name}.{host}")
        assert f"<source network='{lab.name}-sw{host}'" in described.stdout  # its switch
        now = lab.uptime("h2", host)
        assert now > before[host], f"{host} rebooted"
        # The log on h2 goes on from h1's: the one boot, then the uptime just read
        # there (so it is not an empty read), and nothing in between lost to a
        # truncation (no NUL bytes where two writers overlapped).
        log = lab.console_log(host)
        assert log.count(f"{BOOT_LINE} {host}") == 1, log
        assert log.index(f"{BOOT_LINE} {host}") < log.index(f"\n{now:.2f} "), log
        assert "\0" not in log, log
    # copied disks leave nothing behind; shared ones are the very same files
    assert lab.volumes("h1", "private") == []
    assert lab.volumes("h2", "private") == [
        "private-console.log", "private-seed.iso", "private.qcow2"]
    assert lab.volumes("h2", "shared") == ["shared-console.log", "shared-seed.iso", "shared.qcow2"]
    assert lab.volumes("h1", "shared") == []  # h1 let go of the pool, not of the files
    assert (lab.hosts.state / "shared" / lab.name / "shared.qcow2").is_file()
    assert lab.corral("plan", str(lab.file)).returncode == 0  # nothing left to change


def test_a_failed_move_leaves_the_guest_running_and_says_why(lab: Lab, tmp_path: Path) -> None:
    config = lab.hosts.toml.read_text().replace(
        f'migration_address = "{lab.hosts.site_address(3)}"',
        f'migration_address = "{lab.hosts.site_address(99)}"',
    )
    broken = tmp_path / "broken.toml"
    broken.write_text(config)

    result = lab.corral_with(broken, "vm", "migrate", f"{lab.name}.shared", "h3")

    assert result.returncode == 5, result.stdout + result.stderr
    assert "it still runs on h2" in result.stderr
    assert "migration address" in result.stderr
    assert lab.where()["shared"] == ("h2", "running")
    assert "service_host h2" in lab.file.read_text()


def test_vm_migrate_moves_a_stopped_guest_cold_and_edits_the_file(lab: Lab) -> None:
    stopped = lab.corral("stop", "-p", lab.name, "-h", "private", "--timeout", "5")
    assert stopped.returncode == 0, stopped.stderr
    text = lab.file.read_text()

    result = lab.corral("vm", "migrate", f"{lab.name}.private", "h3")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "moved stopped from h2 to h3 (disks copied)" in result.stdout
    lines = text.splitlines()
    line = next(i for i, s in enumerate(lines) if s.startswith("host private")) + 2
    assert lines[line] == "    service_host h2"
    assert lab.file.read_text().splitlines() == [
        *lines[:line], "    service_host h3", *lines[line + 1:]
    ]
    assert lab.where()["private"] == ("h3", "shutoff")
    assert lab.volumes("h2", "private") == []
    assert lab.corral("plan", str(lab.file)).returncode == 0
    started = lab.corral("start", "-p", lab.name, "-h", "private")
    assert started.returncode == 0, started.stdout + started.stderr


def _elsewhere(service_host: str) -> str:
    """A fake host other than ``service_host`` to move a guest to."""
    return next(h for h in SERVICE_HOSTS if h != service_host)


def _service_host_line(text: str, host: str) -> int:
    """The 1-based number of the ``service_host`` line in ``host``'s block."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"host {host} "))
    return next(i for i in range(start, len(lines))
                if lines[i].strip().startswith("service_host ")) + 1


def test_vm_migrate_offline_boots_a_running_guest_again_on_the_target(lab: Lab) -> None:
    """``--offline`` moves a running guest cold: shut down, moved stopped, started on
    the target. It must end running there after a real boot (a boot line in the
    target's log, an uptime shorter than the move), reported as ``cold``, with
    the file naming the target like any ``vm migrate``."""
    source, state = lab.where()["shared"]
    assert state == "running"
    target = _elsewhere(source)
    text = lab.file.read_text()
    line = _service_host_line(text, "shared")
    began = time.monotonic()

    result = lab.corral("vm", "migrate", f"{lab.name}.shared", target, "--offline",
                        "--timeout", "5", "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    moved = json.loads(result.stdout)
    assert (moved["source"], moved["destination"], moved["mode"], moved["shared_storage"]) == (
        source, target, "cold", True)
    assert moved["file_updated"] is True, moved
    assert lab.where()["shared"] == (target, "running")
    lines = text.splitlines()
    assert lab.file.read_text().splitlines() == [
        *lines[:line - 1], f"    service_host {target}", *lines[line:]]
    wait_for(lambda: f"{BOOT_LINE} shared" in lab.console_log("shared"), 120,
             f"shared to boot on {target}")
    assert lab.console_log("shared").count(f"{BOOT_LINE} shared") == 1
    uptime = lab.uptime(target, "shared")
    assert uptime < time.monotonic() - began, f"shared did not boot again ({uptime} s up)"
    assert lab.corral("plan", str(lab.file)).returncode == 0  # nothing left to change


def test_vm_migrate_no_update_file_keeps_the_file_and_names_the_line(lab: Lab) -> None:
    """``--no-update-file`` moves the guest but leaves the project file byte for byte
    as it was; the output names the file and the line to change, or a later
    ``upgrade`` would move the guest back unnoticed."""
    source, state = lab.where()["private"]
    assert state == "running"
    target = _elsewhere(source)
    before = lab.file.read_bytes()
    line = _service_host_line(before.decode(), "private")

    result = lab.corral("vm", "migrate", f"{lab.name}.private", target, "--no-update-file")

    assert result.returncode == 0, result.stdout + result.stderr
    assert lab.file.read_bytes() == before
    assert f"moved live from {source} to {target}" in result.stdout, result.stdout
    assert (f"project file not changed; to keep the move: {lab.file}:{line}: "
            f"change: service_host {source} -> {target}") in result.stdout, result.stdout
    assert lab.where()["private"] == (target, "running")
    assert lab.corral("plan", str(lab.file)).returncode == 9  # the file would move it back

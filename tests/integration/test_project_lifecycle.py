"""One project of three tiny guests on two switches, on the real libvirtd, brought up once.

    front 10.240.F.0/24 (host side .1, DHCP)     back 10.240.B.0/24 (host side .1)
    fixed 10.240.F.10 ---+                       +--- far 10.240.B.20 (maxmem 256M)
    roam  (DHCP)      ---+

The tests run in file order and build on each other: up, what each guest
says on its console, ping, idempotence, a live memory change, stop/start.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from corral.ops import projects

from .guest_console import GuestConsole
from .support import (
    Site,
    expected_objects,
    libvirt_objects,
    node_superclass,
    ping,
    project_name,
    remove_project,
    run_corral,
    wait_for,
    write_project,
)

pytestmark = pytest.mark.libvirt

HOSTS = ["far", "fixed", "roam"]
SWITCHES = ["back", "front"]


def project_text(
    name: str, front: int, back: int, far_memory: str = "128M", back_prefix: int = 24
) -> str:
    return f"""\
global {{
    project {name}
}}
{node_superclass("96M")}
switch front {{
    address 10.240.{front}.1/24
}}
switch back {{
    address 10.240.{back}.1/{back_prefix}
}}
host fixed {{
    superclass node
    network eth0 {{
        switch front
        address 10.240.{front}.10
        netmask 255.255.255.0
        gateway 10.240.{front}.1
    }}
    runcmd {{
        echo said-hostname=$(hostname)
        cat /proc/sys/kernel/random/uuid > /root/stamp
        echo first-boot-stamp=$(cat /root/stamp)
    }}
}}
host roam {{
    superclass node
    network eth0 {{
        switch front
        address dhcp
    }}
    runcmd {{
        echo said-hostname=$(hostname)
    }}
}}
host far {{
    superclass node
    memory {far_memory}
    maxmem 256M
    network eth0 {{
        switch back
        address 10.240.{back}.20
        netmask {back_prefix}
    }}
    runcmd {{
        echo said-hostname=$(hostname)
    }}
}}
"""


class Lab:
    """The module's project: its name, file, subnets and the result of the first ``up``."""

    def __init__(self, site: Site, name: str, path: Path, front: int, back: int) -> None:
        self.site = site
        self.name = name
        self.path = path
        self.front = front
        self.back = back
        self.up_result: projects.ApplyResult | None = None
        self.up_seconds = 0.0

    def rows(self) -> dict[str, projects.StatusRow]:
        with self.site.session() as session:
            return {r.host: r for r in projects.status(session, self.name)}


@pytest.fixture(scope="module")
def lab(site: Site, tiny, subnets, tmp_path_factory) -> Lab:
    name = project_name()
    front, back = subnets(), subnets()
    path = write_project(
        tmp_path_factory.mktemp("lab") / "lab.corral", project_text(name, front, back)
    )
    built = Lab(site, name, path, front, back)
    try:
        with site.session() as session:
            started = time.monotonic()
            built.up_result = projects.up(session, path)
            built.up_seconds = time.monotonic() - started
        yield built
    finally:
        remove_project(site, name)


def test_up_brings_three_hosts_on_two_switches_to_ready(lab: Lab, tiny) -> None:
    result = lab.up_result
    assert result is not None
    reasons = {o.domain: (o.ready, o.reason) for o in result.readiness}
    assert result.ok, reasons
    assert set(reasons) == {f"{lab.name}-{h}" for h in HOSTS}
    rows = lab.rows()
    assert sorted(rows) == HOSTS
    assert {h: r.state for h, r in rows.items()} == dict.fromkeys(HOSTS, "running")
    assert libvirt_objects(lab.name) == expected_objects(lab.name, HOSTS, SWITCHES, tiny.template)


def test_each_guest_reports_its_configured_hostname_on_the_console(lab: Lab, site: Site) -> None:
    with site.session() as session:
        for host in HOSTS:
            log = session.backend("local").console_output(f"{lab.name}-{host}")
            assert f"corral-ready {host}\n" in log.replace("\r", ""), log[-1500:]
            assert f"said-hostname={host}\n" in log.replace("\r", ""), log[-1500:]
    with GuestConsole(f"{lab.name}-roam") as console:
        assert console.run("hostname").strip() == "roam"


def test_host_pings_the_static_and_the_dhcp_guest(lab: Lab) -> None:
    def roam_address() -> str | None:
        addresses = lab.rows()["roam"].addresses
        return addresses[0] if addresses else None

    rows = lab.rows()
    assert rows["fixed"].addresses == [f"10.240.{lab.front}.10"]
    assert rows["far"].addresses == [f"10.240.{lab.back}.20"]
    dynamic = wait_for(roam_address, 30, "a DHCP lease of roam")
    assert dynamic.startswith(f"10.240.{lab.front}.") and dynamic != f"10.240.{lab.front}.10"
    for address in (f"10.240.{lab.front}.10", dynamic, f"10.240.{lab.back}.20"):
        assert ping(address), f"{address} does not answer ping"


def test_second_up_plans_nothing(lab: Lab, site: Site) -> None:
    with site.session() as session:
        plan = projects.plan_source(session, lab.path)
        assert plan.empty, plan.describe()
        again = projects.up(session, lab.path)
    assert again.plan.empty and again.ok
    assert not again.actions and not again.started
    shown = run_corral(site, "plan", str(lab.path))
    assert shown.returncode == 0, shown.stdout + shown.stderr


def test_cli_status_json_describes_every_host(lab: Lab, site: Site) -> None:
    shown = run_corral(site, "status", "-p", lab.name, "--json")
    assert shown.returncode == 0, shown.stderr
    rows = {row["host"]: row for row in json.loads(shown.stdout)["rows"]}
    assert sorted(rows) == HOSTS
    for host, row in rows.items():
        assert set(row) >= {"project", "host", "state", "addresses", "service_host",
                            "memory_mib", "vcpus", "uptime_s", "cpu_percent"}
        assert row["project"] == lab.name and row["state"] == "running", row
        assert row["service_host"] == "local" and row["vcpus"] == 1
        assert row["memory_mib"] == (128 if host == "far" else 96)
    assert rows["fixed"]["addresses"] == [f"10.240.{lab.front}.10"]


def _mem_total_kib(console: GuestConsole) -> int:
    found = re.search(r"MemTotal:\s+(\d+) kB", console.run("grep MemTotal /proc/meminfo"))
    assert found, console.text()[-500:]
    return int(found.group(1))


def test_live_memory_change_through_upgrade_shows_in_the_guest(lab: Lab, site: Site) -> None:
    domain = f"{lab.name}-far"
    with site.session() as session:
        uptime_before = lab.rows()["far"].uptime_s
        with GuestConsole(domain) as console:
            before = _mem_total_kib(console)
            write_project(lab.path, project_text(lab.name, lab.front, lab.back, "160M"))
            plan = projects.plan_source(session, lab.path)
            assert [a.target for a in plan.actions] == ["far"], plan.describe()
            applied = projects.upgrade(session, lab.path)
            (action,) = applied.actions
            changes = [(c.field, c.old, c.new, c.applied.value) for c in action.changes]
            assert changes == [("memory_mib", 128, 160, "live")], changes
            assert not applied.started, applied
            # The balloon gives 32 MiB back to the guest; the kernel counts it in MemTotal.
            grown = wait_for(
                lambda: (_mem_total_kib(console) - before) >= 30 * 1024 or None, 30,
                "MemTotal to grow by 32 MiB",
            )
            assert grown
            after = _mem_total_kib(console)
            assert 30 * 1024 <= after - before <= 34 * 1024, (before, after)
        # QEMU reports balloon changes at most once a second: status may lag that much.
        row = wait_for(
            lambda: (r := lab.rows()["far"]).memory_mib == 160 and r, 10, "status to show 160 MiB"
        )
        assert row.state == "running"
        assert row.uptime_s >= uptime_before, "the guest was restarted"
        assert projects.plan_source(session, lab.path).empty


def test_data_written_in_a_guest_survives_stop_and_start(lab: Lab, site: Site) -> None:
    domain = f"{lab.name}-fixed"
    with site.session() as session:
        first_log = session.backend("local").console_output(domain).replace("\r", "")
        stamp = re.search(r"^first-boot-stamp=(\S+)$", first_log, re.MULTILINE)
        assert stamp, first_log[-1500:]
        with GuestConsole(domain) as console:
            assert console.run("cat /root/stamp").strip() == stamp.group(1)
            console.run("echo typed-at-the-console > /root/typed && sync")

        stopped = projects.stop(session, lab.name, ["fixed"], timeout_s=60)
        assert [(h.domain, h.outcome) for h in stopped.hosts] == [(domain, "clean")]
        assert lab.rows()["fixed"].state == "shutoff"
        outcomes = projects.start(session, lab.name, ["fixed"]).readiness
        assert [o.ready for o in outcomes] == [True], outcomes

        second_log = session.backend("local").console_output(domain).replace("\r", "")
        assert "corral-ready fixed" in second_log
        assert "first-boot-stamp=" not in second_log, "runcmd ran again on the second boot"
        with GuestConsole(domain) as console:
            assert console.run("cat /root/stamp").strip() == stamp.group(1)
            assert console.run("cat /root/typed").strip() == "typed-at-the-console"
    assert ping(f"10.240.{lab.front}.10")


def test_switch_change_keeps_running_guests_connected(lab: Lab, site: Site) -> None:
    # Narrowing the back switch restarts its network; the running guest on it
    # must be plugged into the new bridge with its NIC and address unchanged.
    with site.session() as session:
        uptime_before = lab.rows()["far"].uptime_s
        write_project(
            lab.path, project_text(lab.name, lab.front, lab.back, "160M", back_prefix=25)
        )
        result = projects.upgrade(session, lab.path)
        (action,) = [a for a in result.actions if a.target == "back"]
        assert action.kind == "update-switch", result
        changes = {c.field: c.new for c in action.changes}
        assert str(changes["address"]) == f"10.240.{lab.back}.1/25", changes
        assert projects.plan_source(session, lab.path).empty
    assert wait_for(lambda: ping(f"10.240.{lab.back}.20") or None, 30, "far to answer ping")
    row = lab.rows()["far"]
    assert row.state == "running" and row.uptime_s >= uptime_before

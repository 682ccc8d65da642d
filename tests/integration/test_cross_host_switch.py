"""A switch whose VMs sit on two fake service hosts is one LAN through the site bridge.

One guest starts alone on h1 (its switch is h1's own network); the upgrade
that adds a second guest on h2 turns the switch cross-host: the plan says
so, h1's network is redefined onto the site bridge with the running guest's
NIC moved along, h2 gets the same network, and each guest then pings the
other (its ``runcmd`` prints the outcome on its console). Moving the second
guest back to h1 turns the switch into h1's own network again, the first
guest's NIC following, and the new guest reaches it there. Without a site
bridge on the service hosts the plan refuses, naming them and their VMs.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import subprocess
import time
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from corral.backends.libvirt import networks

from .fakehosts import FakeHosts
from .guest_console import GuestConsole

pytestmark = pytest.mark.libvirt

GUEST = """
host NAME {
    template tiny
    wait none
    service_host SERVICE
    network eth0 {
        switch lan
        address ADDRESS
        netmask 24
    }
    runcmd 'LOOP'
}
"""
# Up to 4 minutes: the other guest may boot well after this one. The verdict
# is quoted apart (re"ached") so the command's own text never reads as one.
LOOP = (
    "i=0; while [ $i -lt 240 ]; do"
    " if ping -c 1 -W 1 OTHER >/dev/null 2>&1; then echo \"xsw-ping NAME->OTHER\" re\"ached\";"
    " exit 0; fi; sleep 1; i=$((i+1)); done; echo \"xsw-ping NAME->OTHER\" un\"reached\""
)
ADDRESSES = {"a": "10.77.0.11", "b": "10.77.0.12"}


def _guest(name: str, other: str, service_host: str) -> str:
    return (GUEST.replace("LOOP", LOOP).replace("NAME", name).replace("SERVICE", service_host)
            .replace("ADDRESS", ADDRESSES[name]).replace("OTHER", ADDRESSES[other]))


def _project(path: Path, project: str, *guests: str) -> Path:
    path.write_text(f"global {{ project {project} }}\nswitch lan {{ }}\n" + "".join(guests))
    return path


def _with_site_bridges(hosts: FakeHosts, path: Path, names: tuple[str, ...]) -> FakeHosts:
    """The harness's site config plus ``site_bridge`` for the named service hosts."""
    text = hosts.toml.read_text()
    for name in names:
        text = text.replace(f"[service_hosts.{name}]\n",
                            f'[service_hosts.{name}]\nsite_bridge = "{hosts.bridge}"\n')
    path.write_text(text)
    return dataclasses.replace(hosts, toml=path)


def _console(hosts: FakeHosts, project: str, name: str) -> str:
    """What the guest printed in its current boot, read through libvirt."""
    return hosts.corral("vm", "log", f"{project}.{name}").stdout


def _network(hosts: FakeHosts, service_host: str, name: str) -> etree._Element | None:
    conn = libvirt.open(hosts.uris[service_host])
    try:
        return etree.fromstring(conn.networkLookupByName(name).XMLDesc(0).encode())
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()


def test_two_guests_on_one_switch_over_two_hosts_ping_each_other(
    three_hosts: FakeHosts, tmp_path: Path
) -> None:
    project = f"xsw{secrets.token_hex(2)}"
    alone = _project(tmp_path / "alone.corral", project, _guest("a", "b", "h1"))
    both = _project(tmp_path / "both.corral", project,
                    _guest("a", "b", "h1"), _guest("b", "a", "h2"))

    site = _with_site_bridges(three_hosts, tmp_path / "corral.toml", ("h1", "h2"))
    conn = libvirt.open(site.uris["h2"])
    try:  # what `up` asks before it changes anything
        assert networks.has_bridge(conn, site.bridge) is True
        assert networks.has_bridge(conn, "nosuchbridge0") is False
    finally:
        conn.close()
    try:
        refused = three_hosts.corral("plan", str(both))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "switch lan connects VMs on service hosts h1, h2 (h1: a; h2: b)" in refused.stderr
        assert "h1 and h2 have no site_bridge" in refused.stderr

        up = site.corral("up", str(alone))
        assert up.returncode == 0, up.stdout + up.stderr
        single = _network(site, "h1", f"{project}-lan")
        assert single is not None and single.find("forward") is None

        plan = site.corral("plan", str(both))
        assert plan.returncode == 9, plan.stdout + plan.stderr
        assert f"service_hosts: h1 -> h1, h2 through site bridge {site.bridge}" in plan.stdout

        upgraded = site.corral("upgrade", "-f", str(both))
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
        for service_host in ("h1", "h2"):
            network = _network(site, service_host, f"{project}-lan")
            assert network is not None
            assert network.find("forward").get("mode") == "bridge"
            assert network.find("bridge").get("name") == site.bridge

        seen: dict[str, str] = {}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(seen) < 2:
            for name in ("a", "b"):
                found = re.search(r"xsw-ping \S+ (reached|unreached)",
                                  _console(site, project, name))
                if found:
                    seen[name] = found.group(0)
            time.sleep(2)
        assert seen == {"a": "xsw-ping a->10.77.0.12 reached",
                        "b": "xsw-ping b->10.77.0.11 reached"}
        assert site.corral("plan", str(both)).returncode == 0

        # b back on h1 (moved live): the switch is h1's own network again, with
        # the running guests' NICs moved back onto it, and h2's network goes.
        back = _project(tmp_path / "back.corral", project,
                        _guest("a", "b", "h1"), _guest("b", "a", "h1"))
        plan = site.corral("plan", str(back))
        assert f"service_hosts: h1, h2 through site bridge {site.bridge} -> h1" in plan.stdout
        upgraded = site.corral("upgrade", "-f", str(back), "--recreate")
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
        single = _network(site, "h1", f"{project}-lan")
        assert single is not None and single.find("forward") is None
        assert _network(site, "h2", f"{project}-lan") is None
        # a few tries: the first echo after both guests' taps moved may go before
        # the bridge and the guests' neighbour tables have caught up
        reach = (f"for try in 1 2 3 4 5 6; do ping -c 1 -W 3 {ADDRESSES['a']} >/dev/null "
                 "&& echo b-reaches-a && break; done; ip neigh")
        with GuestConsole(f"{project}-b", site.uris["h1"]) as console:
            answer = console.run(reach, timeout=90)
        links = subprocess.run(
            ["nsenter", "-t", str(three_hosts.record("h1")["holder"]), "-n",
             "ip", "-o", "link", "show"], capture_output=True, text=True, check=False,
        ).stdout
        assert "b-reaches-a" in answer, f"{answer}\nh1's links:\n{links}"
    finally:
        removed = site.corral("remove", "-p", project, "--yes")
        assert removed.returncode in (0, 3), removed.stdout + removed.stderr

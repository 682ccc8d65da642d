"""An ``lxc`` host run by libvirt's LXC driver beside a VM on the same switch.

The container's root filesystem template is built for the project's host by
the CLI (``template build debian --from-project``: a root filesystem, since
the host is ``lxc``, with the host's packages baked in). ``up`` makes the
container's root from it and starts it; its own cloud-init, reading Corral's
seed directory, names it, sets its static address and gateway and root's
key, and prints the ready line into the console log Corral reads. Over SSH
the container reaches the tiny VM on the same switch. Memory changes live,
a stop is clean (systemd's own poweroff), a start is ready again, a pause
and resume work, a suspend is refused saying why, and
``remove`` deletes the container's directory and leaves the template whole.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from corral.ops import projects
from corral.ops.source import ProjectSource
from corral.ops.status import status

from .support import (
    Site,
    node_superclass,
    project_name,
    remove_project,
    run_corral,
    sha256,
    write_project,
)

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(1800)]

TEMPLATE = "rootfs-it"


@dataclass(frozen=True)
class Lab:
    name: str
    path: Path
    key: Path
    octet: int

    @property
    def container(self) -> str:
        return f"10.240.{self.octet}.20"

    @property
    def vm(self) -> str:
        return f"10.240.{self.octet}.30"

    def text(self, memory: str) -> str:
        return f"""\
global {{
    project {self.name}
    sshkey {{
        root {self.key}.pub
    }}
}}
{node_superclass()}
switch lan {{ address 10.240.{self.octet}.1/24 }}
host web {{
    lxc
    template {TEMPLATE}
    memory {memory}
    maxmem 512M
    vcpus 1
    packages iputils-ping
    wait console 300
    network eth0 {{
        switch lan
        address {self.container}
        gateway 10.240.{self.octet}.1
    }}
}}
host vm {{
    superclass node
    network eth0 {{
        switch lan
        address {self.vm}
    }}
}}
"""


@pytest.fixture(scope="module")
def lab(site: Site, subnets: object, tiny: object) -> Iterator[Lab]:
    name = project_name()
    key = site.root / f"{name}-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    made = Lab(name, site.root / f"{name}.corral", key, subnets())  # type: ignore[operator]
    write_project(made.path, made.text("256M"))
    built = run_corral(site, "template", "build", "debian", "--from-project", str(made.path),
                       "--host", "web", timeout=1200)
    assert built.returncode == 0, built.stdout + built.stderr
    (site.root / "templates").chmod(0o755)
    yield made
    with site.session() as session:
        session.registry.remove(TEMPLATE)


def _ssh(lab: Lab, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(lab.key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "ConnectTimeout=10", f"root@{lab.container}", command],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)


def _container_memory_kib(domain: str) -> int:
    conn = libvirt.open("lxc:///system")
    try:
        return int(conn.lookupByName(domain).info()[1])
    finally:
        conn.close()


def test_a_container_and_a_vm_share_a_switch(site: Site, lab: Lab) -> None:
    with site.session() as session:
        template = session.registry.get(TEMPLATE)
    assert template.kind == "rootfs" and template.rootfs is not None
    digest = sha256(Path(template.rootfs))
    runs = site.root / "runs" / f"{lab.name}.lxc" / "web"
    try:
        with site.session() as session:
            result = projects.up(session, ProjectSource.from_path(lab.path))
            ready = {r.host: (r.ready, r.reason) for r in result.readiness}
            assert ready == {"web": (True, "corral-ready on the console"),
                             "vm": (True, "corral-ready on the console")}, result
            rows = {row.host: row for row in status(session, lab.name)}
            assert rows["web"].state == "running" and rows["web"].memory_mib == 256
        assert (runs / "root" / "etc").is_dir() and (runs / "seed" / "user-data").is_file()

        probe = _ssh(lab, "hostname; cloud-init status; ip -4 -o addr show dev eth0; "
                     "ip -4 route show default; ping -c 2 -W 5 " + lab.vm)
        assert probe.returncode == 0, probe.stdout + probe.stderr
        lines = probe.stdout.splitlines()
        assert lines[0] == "web"
        assert lines[1] == "status: done"
        assert f"inet {lab.container}/24" in lines[2]
        assert lines[3].startswith(f"default via 10.240.{lab.octet}.1 dev eth0")
        assert "2 received" in probe.stdout  # the VM answers on the same switch

        write_project(lab.path, lab.text("384M"))
        with site.session() as session:
            changed = projects.upgrade(session, ProjectSource.from_path(lab.path))
            [action] = changed.actions
            assert (action.kind, action.target) == ("update-host", "web")
            assert [(c.field, c.applied) for c in action.changes] == [("memory_mib", "live")]
        assert _container_memory_kib(f"{lab.name}-web") == 512 * 1024
        with site.session() as session:
            rows = {row.host: row for row in status(session, lab.name)}
            assert rows["web"].memory_mib == 384

            stopped = projects.stop(session, lab.name, hosts=["web"], timeout_s=120)
            assert [(h.host, h.outcome) for h in stopped.hosts] == [("web", "clean")], stopped
            started = projects.start(session, lab.name, hosts=["web"])
            assert [(r.host, r.ready) for r in started.readiness] == [("web", True)]
            logged = run_corral(site, "vm", "log", f"{lab.name}.web")
            assert logged.returncode == 0 and "corral-ready web" in logged.stdout, logged
        suspended = run_corral(site, "vm", "suspend", f"{lab.name}.web")
        assert suspended.returncode != 0 and "keeps no saved state" in suspended.stderr
        for verb, state in (("pause", "paused"), ("resume", "running")):
            assert run_corral(site, "vm", verb, f"{lab.name}.web").returncode == 0
            with site.session() as session:
                assert {r.host: r.state for r in status(session, lab.name)}["web"] == state
    finally:
        remove_project(site, lab.name)
    assert not runs.exists() and not runs.parent.exists()
    assert sha256(Path(template.rootfs)) == digest  # the template was only read

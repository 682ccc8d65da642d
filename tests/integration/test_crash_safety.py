"""``corral up`` killed with SIGKILL at several points converges when rerun.

Each case starts the real CLI on a fresh project, watches libvirt from the
side and kills the process right after a chosen object first appears: a
network, the project's storage pool, a volume, a domain definition, a running
domain. The rerun must bring every host of the file up and ready, leave
exactly the file's domains, networks and volumes (no orphan), and ``remove``
must then leave nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import libvirt
import pytest

from corral.ops import projects

from .support import (
    CORRAL,
    URI,
    Site,
    expected_objects,
    libvirt_objects,
    node_superclass,
    project_name,
    remove_project,
    write_project,
)

pytestmark = pytest.mark.libvirt

HOSTS = ["one", "two"]
SWITCHES = ["inner", "outer"]


def project_text(name: str, outer: int) -> str:
    return f"""\
global {{
    project {name}
}}
{node_superclass("96M")}
switch outer {{
    address 10.240.{outer}.1/24
}}
switch inner {{ }}
host one {{
    superclass node
    network eth0 {{
        switch outer
        address dhcp
    }}
    network eth1 {{
        switch inner
        address 192.168.77.1
        netmask 255.255.255.0
    }}
}}
host two {{
    superclass node
    network eth0 {{
        switch inner
        address 192.168.77.2
        netmask 255.255.255.0
    }}
}}
"""


class Watcher:
    """Looks at one project's objects in libvirt, quickly and repeatedly, on its own connection."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.prefix = f"{project}-"
        self.conn = libvirt.open(URI)

    def networks(self) -> bool:
        return any(n.name().startswith(self.prefix) for n in self.conn.listAllNetworks(0))

    def pool(self) -> bool:
        try:
            self.conn.storagePoolLookupByName(f"corral-{self.project}")
        except libvirt.libvirtError:
            return False
        return True

    def volumes(self) -> bool:
        try:
            pool = self.conn.storagePoolLookupByName(f"corral-{self.project}")
            return pool.isActive() and bool(pool.listVolumes())
        except libvirt.libvirtError:
            return False

    def domains(self) -> bool:
        return any(d.name().startswith(self.prefix) for d in self.conn.listAllDomains(0))

    def running(self) -> bool:
        return any(
            d.name().startswith(self.prefix)
            for d in self.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        )

    def close(self) -> None:
        self.conn.close()


KILL_POINTS: dict[str, Callable[[Watcher], bool]] = {
    "first-network": Watcher.networks,
    "pool-defined": Watcher.pool,
    "first-volume": Watcher.volumes,
    "first-domain-defined": Watcher.domains,
    "first-domain-running": Watcher.running,
}


def up_and_kill(site: Site, path: Path, project: str, point: Callable[[Watcher], bool]) -> None:
    """Start ``corral up`` and SIGKILL it as soon as ``point`` holds in libvirt."""
    watcher = Watcher(project)
    process = subprocess.Popen(
        [str(CORRAL), "--config", str(site.toml), "up", str(path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if point(watcher):
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        output = process.communicate(timeout=30)[0].decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        watcher.close()
    assert process.returncode == -signal.SIGKILL, (
        f"corral up was not killed mid-way (exit {process.returncode}):\n{output}"
    )


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_up_killed_then_rerun_converges_without_orphans(
    point: str, site: Site, tiny, subnets, tmp_path: Path
) -> None:
    project = project_name()
    path = write_project(tmp_path / "crash.corral", project_text(project, subnets()))
    try:
        up_and_kill(site, path, project, KILL_POINTS[point])
        left = libvirt_objects(project)
        assert not left.empty, "the kill came before anything was created"

        with site.session() as session:
            result = projects.up(session, path)
            assert result.ok, [(o.domain, o.reason) for o in result.readiness]
            rows = projects.status(session, project)
            assert {r.host: r.state for r in rows} == dict.fromkeys(HOSTS, "running")
            wanted = expected_objects(project, HOSTS, SWITCHES, tiny.template)
            assert libvirt_objects(project) == wanted
            assert projects.plan_source(session, path).empty

            projects.remove(session, project)
        assert libvirt_objects(project).empty, libvirt_objects(project)
    finally:
        remove_project(site, project)

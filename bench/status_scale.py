"""Benchmark: ``corral status`` over 1,000 domains on libvirt's test driver.

libvirt's ``test:///default`` driver runs in this process, so the figure is
Corral's own cost plus libvirt's API layer, with no daemon round trips. The
fleet: 10 projects of 100 hosts (1,000 domains), each host defined through
the backend's ``define_domain`` (the XML and metadata ``up`` writes), one
switch with a host address per project (static leases for the static hosts),
every project recorded in the state database as ``up`` records it; 900
domains running, 100 shut off (every tenth), because shut-off domains take
an extra managed-save check.

Timed, best of 5 (the goal is under 1 s for ``status``):

* ``status(session, None)``: every row of every project, the CLI's ``corral status``;
* ``status(session, P)``: one project of 100 hosts (``corral status -p P``);
* ``observe``: the observation ``plan``/``remove``/``status`` start from
  (domains, networks, volumes of every project);
* ``domain_stats``: the backend's bulk stats call and its rows;
* raw floor: one ``getAllDomainStats`` call with the same stats flags, and
  that call plus the per-domain metadata read that identifies Corral's domains.

    .venv/bin/python bench/status_scale.py [--domains 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import libvirt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import scratch_dir, site_config

from corral.backends.base import BootSpec, DomainSpec, NicSpec
from corral.backends.libvirt import names
from corral.backends.libvirt.backend import LibvirtBackend
from corral.backends.libvirt.metadata import NS
from corral.backends.libvirt.observe import _STATS  # the flags domain_stats asks for
from corral.images.registry import Template
from corral.model import Host, Interface, Project, Switch
from corral.net.macs import derive_mac
from corral.ops.apply import static_leases
from corral.ops.observe import observe_everywhere
from corral.ops.projects import status
from corral.ops.session import Session

GOAL_S = 1.0
URI = "test:///default"
HOSTS_PER_PROJECT = 100
TEMPLATE_ROOT = Path("/var/lib/corral/templates/tiny")


def tiny_template() -> Template:
    """A direct-boot template description; the test driver never opens its files."""
    return Template(
        name="tiny", kind="direct", directory=TEMPLATE_ROOT, disk=TEMPLATE_ROOT / "disk.qcow2",
        kernel=TEMPLATE_ROOT / "vmlinuz", initrd=TEMPLATE_ROOT / "initrd.img", format="qcow2",
        virtual_size=96 * 1024**2, cmdline="console=ttyS0 root=/dev/vda rw quiet panic=-1",
        sha256={}, added_at="2026-01-01T00:00:00+00:00",
    )


def fleet(domains: int) -> list[Project]:
    """Projects of up to 100 hosts; even hosts static, odd on DHCP."""
    projects = []
    for p in range((domains + HOSTS_PER_PROJECT - 1) // HOSTS_PER_PROJECT):
        name = f"s{p:02d}"
        net = f"10.{100 + p // 200}.{p % 200}"
        hosts = {}
        count = min(HOSTS_PER_PROJECT, domains - p * HOSTS_PER_PROJECT)
        for i in range(count):
            host_name = f"n{i:03d}"
            static = i % 2 == 0
            nic = Interface(
                name="eth0", switch="lan",
                address=f"{net}.{10 + i}" if static else "dhcp",
                netmask="255.255.255.0" if static else None,
                mac=derive_mac(name, host_name, "eth0"),
            )
            hosts[host_name] = Host(name=host_name, template="tiny", virt="qemu",
                                    memory_mib=64, interfaces=(nic,))
        switch = Switch(name="lan", address=f"{net}.1/24")
        projects.append(Project(name=name, hosts=hosts, switches={"lan": switch}))
    return projects


def populate(session: Session, backend: LibvirtBackend, projects: list[Project]) -> None:
    """Networks, domains (900 of 1,000 started) and state records, as ``up`` leaves them."""
    template = tiny_template()
    boot = BootSpec.from_template(template)
    runs = session.site.paths.runs
    index = 0
    for project in projects:
        network = backend.ensure_network(
            project.name, project.switches["lan"], static_leases(project, "lan"))
        for host in project.hosts.values():
            backend.define_domain(DomainSpec(
                project=project.name,
                host=host,
                virt_type="qemu",
                boot=boot,
                disk_path=str(runs / project.name / names.disk_volume(host.name)),
                seed_path=str(runs / project.name / names.seed_volume(host.name)),
                nics=tuple(NicSpec(i.mac, network=network, name=i.name)
                           for i in host.interfaces),
                model_hash=host.model_hash(),
            ))
            if index % 10 != 9:
                backend.start(names.domain_name(project.name, host.name))
            index += 1
        store = session.store
        if store is not None:
            model_json = json.dumps(project.model_dump(mode="json"))
            store.record_project(
                project.name, f"/srv/projects/{project.name}.corral", model_json,
                hashlib.sha256(model_json.encode()).hexdigest()[:16],
            )


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    times = []
    result: object = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def raw_with_metadata(conn: libvirt.virConnect) -> int:
    """The floor of identification: the bulk call plus one metadata read per domain."""
    found = 0
    for domain, _stats in conn.getAllDomainStats(_STATS, 0):
        try:
            domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS, 0)
        except libvirt.libvirtError:
            continue
        found += 1
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    with scratch_dir("corral-bench-status-") as root:
        site = site_config(root, URI)
        # test:///default gives every open a fresh state: one backend (one
        # connection) serves both the set-up and the session.
        backend = LibvirtBackend("local", URI, runs_dir=site.paths.runs)
        session = Session(site, backend_factory=lambda _name, _uri, _runs: backend)
        try:
            projects = fleet(args.domains)
            started = time.perf_counter()
            populate(session, backend, projects)
            print(f"set-up: {args.domains} domains in {len(projects)} projects on {URI} "
                  f"in {time.perf_counter() - started:.1f} s")
            conn = backend.conn
            one = projects[len(projects) // 2].name
            figures = [
                ("status (all projects)", lambda: status(session, None)),
                (f"status -p {one}", lambda: status(session, one)),
                ("observe (all projects)", lambda: observe_everywhere(session, None)),
                ("domain_stats (bulk rows)", lambda: backend.domain_stats(None)),
                ("raw getAllDomainStats", lambda: conn.getAllDomainStats(_STATS, 0)),
                ("raw + metadata per domain", lambda: raw_with_metadata(conn)),
            ]
            results = [(label, *best_of(args.repeat, fn)) for label, fn in figures]
        finally:
            session.close()
    rows = results[0][2]
    assert isinstance(rows, list)
    if len(rows) != args.domains:
        print(f"status_scale: status gave {len(rows)} rows, expected {args.domains}",
              file=sys.stderr)
        return 1
    running = sum(r.state == "running" for r in rows)
    floor = results[4][1]
    print(f"status rows: {len(rows)} ({running} running); best of {args.repeat}; "
          f"goal for status: under {GOAL_S:.0f} s")
    print(f"{'path':<28} {'seconds':>8} {'x goal':>7} {'x floor':>8}")
    for label, seconds, _ in results:
        print(f"{label:<28} {seconds:8.3f} {seconds / GOAL_S:7.2f} {seconds / floor:8.1f}")
    verdict = "ok" if results[0][1] < GOAL_S else "OVER the goal"
    print(f"status over {args.domains} domains: {results[0][1]:.3f} s ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

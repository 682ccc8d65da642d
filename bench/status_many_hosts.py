"""Benchmark: ``corral status`` over 10 service hosts of 100 domains each.

Every service host is a fake host of ``scripts/fake-hosts`` (its own libvirtd
in its own namespaces, reached over TLS), and the domains live in that
daemon's *test* driver (``test+tls://10.NET.I.2:16514/default``), so 1,000
domains cost no QEMU and no memory, while every call still crosses a real
daemon and a TLS connection, as on a real site. The figure is then Corral's
own cost plus one network round trip per libvirt call.

The test driver's ``/default`` state lives in the daemon as long as some
connection to it is open (the last close discards it), so the benchmark keeps
one connection per host open from the set-up to the end: ``corral status``,
in process and as a CLI, opens its own connections next to those and sees the
same domains.

The fleet: 10 projects of 100 hosts, each project spread round robin over
the 10 service hosts (10 of its hosts on each), defined through the backend's
``define_domain`` (the XML and metadata ``up`` writes), one switch per project
and service host, every project recorded in the state database; 90 % of the
domains running. ``local`` is always a service host of a site, so it is
fake host 1's test driver here (the main daemon, with other work's domains,
stays out of the figure): the service hosts are ``local``, ``h2`` .. ``h10``.

Timed, best of ``--repeat`` (the goal is under 0.5 s for ``status``):

* ``status (fresh session)``: ``corral.ops.status.status_report`` from a new
  session, i.e. including the TLS connections, as one ``corral status`` does;
* ``status (open session)``: the same on a session whose connections are open;
* ``raw connect + bulk stats``: per host in parallel, ``libvirt.open`` and one
  ``getAllDomainStats`` with the flags Corral asks for;
* ``raw bulk stats`` (the floor): the bulk call alone on the 10 open
  connections, in parallel;
* ``corral status --json`` (CLI): the whole command in a new process
  (interpreter start and imports included).

    sudo .venv/bin/python bench/status_many_hosts.py [--hosts 10] [--domains 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libvirt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import FakeHarness, fake_hosts, interrupt_on_sigterm, scratch_dir
from status_scale import tiny_template

from corral.backends.base import Backend, BootSpec, DomainSpec, NicSpec
from corral.backends.libvirt import names
from corral.backends.libvirt.backend import LibvirtBackend
from corral.backends.libvirt.observe import _STATS  # the flags Corral's bulk call asks for
from corral.config import SiteConfig, parse_site_config
from corral.model import Host, Interface, Project, Switch
from corral.model.project import Virt
from corral.net.macs import derive_mac
from corral.ops.apply import static_leases
from corral.ops.session import Session
from corral.ops.status import status_report

GOAL_S = 0.5
PROJECTS = 10
REPO = Path(__file__).resolve().parent.parent


def host_names(count: int) -> list[str]:
    """``local`` (always part of a site) then ``h2`` .. ``hN``: fake host I is the I-th."""
    return ["local", *(f"h{i}" for i in range(2, count + 1))]


def test_uri(harness: FakeHarness, index: int) -> str:
    """Fake host ``index``'s daemon, test driver, shared ``/default`` state."""
    return (f"test+tls://10.{harness.net}.{index}.2:16514/default"
            f"?pkipath={harness.state / 'pki'}")


def write_site(root: Path, uris: dict[str, str]) -> SiteConfig:
    """A site naming the test-driver service hosts; its paths in the scratch dir."""
    text = (
        "[paths]\n"
        f'templates = "{root / "templates"}"\n'
        f'state = "{root / "state.db"}"\n'
        f'runs = "{root / "runs"}"\n'
    )
    for name, uri in uris.items():
        text += f'\n[service_hosts.{name}]\nuri = "{uri}"\n'
    path = root / "corral.toml"
    path.write_text(text)
    return parse_site_config(text, path)


def fleet(service_hosts: list[str], per_host: int) -> list[Project]:
    """``PROJECTS`` projects whose hosts go round robin over the service hosts,
    ``per_host`` domains on each service host in all; even hosts static."""
    total = per_host * len(service_hosts)
    size = total // PROJECTS
    projects = []
    for p in range(PROJECTS):
        name = f"m{p:02d}"
        net = f"10.{100 + p}.0"
        hosts = {}
        for i in range(size):
            host_name = f"n{i:03d}"
            static = i % 2 == 0
            nic = Interface(
                name="eth0", switch="lan",
                address=f"{net}.{10 + i}" if static else "dhcp",
                netmask="255.255.255.0" if static else None,
                mac=derive_mac(name, host_name, "eth0"),
            )
            hosts[host_name] = Host(
                name=host_name, template="tiny", virt=Virt.QEMU, memory_mib=64,
                interfaces=(nic,), service_host=service_hosts[i % len(service_hosts)],
            )
        projects.append(Project(name=name, hosts=hosts,
                                switches={"lan": Switch(name="lan", address=f"{net}.1/16")}))
    return projects


def populate(backend: LibvirtBackend, projects: list[Project], runs: Path) -> int:
    """This service host's share of every project: its switch, its domains (nine
    in ten started). Returns how many domains it defined."""
    # Booting from the disk: a direct kernel would be uploaded to each host's
    # template store, which the test driver's storage cannot take.
    boot = BootSpec(template=tiny_template().name, kind="disk")
    count = 0
    for project in projects:
        mine = [h for h in project.hosts.values() if h.service_host == backend.name]
        if not mine:
            continue
        network = backend.ensure_network(
            project.name, project.switches["lan"], static_leases(project, "lan"))
        for host in mine:
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
            if count % 10 != 9:
                backend.start(names.domain_name(project.name, host.name))
            count += 1
    return count


def record(session: Session, projects: list[Project]) -> None:
    """Record every project in the state database, as ``up`` does."""
    store = session.store
    assert store is not None
    for project in projects:
        model_json = json.dumps(project.model_dump(mode="json"))
        store.record_project(
            project.name, f"/srv/projects/{project.name}.corral", model_json,
            hashlib.sha256(model_json.encode()).hexdigest()[:16],
        )


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def raw_parallel(conns: list[libvirt.virConnect]) -> int:
    """The floor: one bulk stats call per service host, all at once."""
    with ThreadPoolExecutor(max_workers=len(conns)) as pool:
        return sum(len(r) for r in pool.map(lambda c: c.getAllDomainStats(_STATS, 0), conns))


def raw_connect_parallel(uris: list[str]) -> int:
    """Connect, one bulk stats call, close: per service host, all at once."""

    def one(uri: str) -> int:
        conn = libvirt.open(uri)
        try:
            return len(conn.getAllDomainStats(_STATS, 0))
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=len(uris)) as pool:
        return sum(pool.map(one, uris))


def fresh_status(site: SiteConfig, expected: int) -> int:
    with Session(site) as session:
        report = status_report(session, None)
    if report.silent or len(report.rows) != expected:
        raise RuntimeError(f"status: {len(report.rows)} rows (expected {expected}); "
                           f"silent: {report.silent}")
    return len(report.rows)


def _read(backend: Backend) -> object:
    """What status asks of one service host."""
    survey = backend.survey(None)
    return backend.leases(survey.lease_networks)


def cli_status(config: Path, expected: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "corral", "--config", str(config), "status", "--json"],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"corral status --json failed: {result.stderr.strip()}")
    rows = json.loads(result.stdout)
    count = len(rows["rows"]) if isinstance(rows, dict) else len(rows)
    if count != expected:
        raise RuntimeError(f"corral status --json: {count} rows, expected {expected}")
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10, help="fake service hosts")
    parser.add_argument("--domains", type=int, default=100, help="domains per service host")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also print the N costliest functions of status's reads, one "
                             "service host after another (cProfile, cumulative time)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("status_many_hosts: fake hosts need root", file=sys.stderr)
        return 2
    if (args.domains * args.hosts) % PROJECTS:
        print(f"status_many_hosts: hosts x domains must be a multiple of {PROJECTS}",
              file=sys.stderr)
        return 2
    expected = args.hosts * args.domains
    with interrupt_on_sigterm(), scratch_dir("corral-bench-statusmh-") as root:
        try:
            with fake_hosts(root, args.hosts) as harness:
                return measure(root, harness, args.hosts, args.domains, args.repeat, expected,
                               args.profile)
        except KeyboardInterrupt:
            print("interrupted: taking the fake hosts down", file=sys.stderr)
            return 130
        except RuntimeError as error:
            print(f"status_many_hosts: failed: {error}", file=sys.stderr)
            return 1


def measure(root: Path, harness: FakeHarness, count: int, per_host: int, repeat: int,
            expected: int, profile: int = 0) -> int:
    service_hosts = host_names(count)
    uris = {name: test_uri(harness, i + 1) for i, name in enumerate(service_hosts)}
    site = write_site(root, uris)
    projects = fleet(service_hosts, per_host)
    # These backends keep every daemon's test state alive until the end.
    keepers = [LibvirtBackend(name, uri, runs_dir=site.paths.runs) for name, uri in uris.items()]
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(keepers)) as pool:
            defined = sum(pool.map(lambda b: populate(b, projects, site.paths.runs), keepers))
        with Session(site) as session:
            record(session, projects)
        print(f"set-up: {defined} domains in {len(projects)} projects on {count} fake hosts "
              f"(test driver over TLS) in {time.perf_counter() - started:.1f} s; "
              f"fake hosts up in {harness.seconds:.1f} s", flush=True)
        conns = [k.conn for k in keepers]
        with Session(site) as open_session:
            status_report(open_session, None)  # connect once
            figures: list[tuple[str, Callable[[], object]]] = [
                ("status (fresh session)", lambda: fresh_status(site, expected)),
                ("status (open session)", lambda: status_report(open_session, None)),
                ("raw connect + bulk stats", lambda: raw_connect_parallel(list(uris.values()))),
                ("raw bulk stats (floor)", lambda: raw_parallel(conns)),
                ("corral status --json (CLI)", lambda: cli_status(site.source or root, expected)),
            ]
            results = []
            for label, fn in figures:
                seconds, _ = best_of(repeat, fn)
                results.append((label, seconds))
                print(f"  {label:<28} {seconds:7.3f} s", flush=True)
            if profile:
                # cProfile sees one thread only: the service hosts' reads, one after another
                profiler = cProfile.Profile()
                profiler.runcall(lambda: [_read(open_session.backend(n)) for n in uris])
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(profile)
    finally:
        for keeper in keepers:
            keeper.close()
    floor = results[3][1]
    print(f"\n{count} service hosts x {per_host} domains; best of {repeat}; "
          f"goal for status: under {GOAL_S} s")
    print(f"{'path':<28} {'seconds':>8} {'x goal':>7} {'x floor':>8}")
    for label, seconds in results:
        print(f"{label:<28} {seconds:8.3f} {seconds / GOAL_S:7.2f} {seconds / floor:8.1f}")
    verdict = "ok" if results[0][1] < GOAL_S else "OVER the goal"
    print(f"status over {expected} domains on {count} service hosts: "
          f"{results[0][1]:.3f} s ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

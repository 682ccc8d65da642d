"""Benchmark: ``corral up`` of N tiny VMs against the raw libvirt-python floor.

Both variants run on the real local libvirtd in the same process run,
alternating (corral first on even repetitions, raw first on odd ones), each
with a fresh project name, and everything is removed between runs. The
project: N hosts from the ``tiny`` template (96 MiB by default, one vCPU, ``qemu``), one
switch with a host address (so libvirt runs dnsmasq), even hosts with static
addresses (a static DHCP lease each), odd hosts on DHCP.

* **corral**: ``corral.ops.projects.up(session, file, wait=...)`` from a fresh
  Session (connection, file load, observe, plan, check, state database, switch,
  pool, run copies, seeds, domain definitions, second observe, starts).
* **raw**: the same libvirt objects made directly with libvirt-python: the
  network, the pool, per host a qcow2 overlay volume on the template
  (``<backingStore>``, libvirt runs ``qemu-img``), a seed volume written in
  place (as Corral does on a local service host), ``defineXML`` and ``create``.
  The XML documents and seed ISOs are the ones Corral's builders make (same
  domains), built inside the timed region; the project file is parsed before
  the clock starts. Per-host work runs on a pool of as many threads as
  Corral's session uses, in the same two phases as Corral (every host
  built, then every host started): a guest started early boots while the
  others are still being built, and under TCG on a few cores that
  contention, not the work, would decide the figure.

Two modes: ``started`` (define + start; corral ``up --no-wait``) and, with
``--ready``, ``ready`` (until every guest printed ``corral-ready HOST`` on its
serial console; corral's default readiness with ``wait console``). The table
gives the best of the repetitions per variant and their ratio; the goal is a
ratio of at most 1.3.

    sudo .venv/bin/python bench/up_vs_libvirt.py [--sizes 10 30] [--repeat 2] [--ready]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import libvirt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    interrupt_on_sigterm,
    project_name,
    register_tiny,
    require_root_for,
    scratch_dir,
    site_config,
    sweep,
)

from corral.backends.base import BootSpec, DomainSpec, NicSpec
from corral.backends.libvirt import console, domain_xml, names, network_xml, storage
from corral.config import SiteConfig
from corral.errors import CorralError
from corral.images.registry import Template, TemplateRegistry
from corral.images.seed import build_seed, ready_line
from corral.model import Project
from corral.model.load import load_project
from corral.ops.apply import static_leases
from corral.ops.projects import remove, up
from corral.ops.reporting import SilentReporter
from corral.ops.session import Session
from corral.ops.workers import host_bound

GOAL_RATIO = 1.3
URI = "qemu:///system"
POLL_S = 0.5  # the same poll interval as corral's readiness wait
SWITCH = "lan"


# ---------------------------------------------------------------- the project file
def project_text(project: str, hosts: int, subnet: int, wait: str, memory: int = 96) -> str:
    """N tiny hosts on one switch with a host address; even static, odd DHCP."""
    net = f"10.249.{subnet}"
    lines = [
        f"global {{ project {project} }}",
        "superclass node {",
        "    template tiny",
        "    qemu",
        f"    memory {memory}M",
        "    vcpus 1",
        f"    wait {wait}",
        "}",
        f"switch {SWITCH} {{ address {net}.1/24 }}",
    ]
    for i in range(hosts):
        if i % 2 == 0:
            nic = [f"address {net}.{10 + i}", "netmask 255.255.255.0", f"gateway {net}.1"]
        else:
            nic = ["address dhcp"]
        lines += [
            f"host n{i:02d} {{",
            "    superclass node",
            "    network eth0 {",
            f"        switch {SWITCH}",
            *(f"        {statement}" for statement in nic),
            "    }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def write_project(
    root: Path, project: str, hosts: int, subnet: int, wait: str, memory: int
) -> Path:
    path = root / f"{project}.corral"
    path.write_text(project_text(project, hosts, subnet, wait, memory))
    return path


# ---------------------------------------------------------------- the two variants
@contextlib.contextmanager
def _phase(phases: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - started


class _Tick:
    def advance(self, label: str = "") -> None:
        return None


class PhaseReporter(SilentReporter):
    """Times corral's progress phases ("building hosts", "starting hosts") and the
    readiness wait (from its "waiting for" note), so a run shows where it went."""

    def __init__(self) -> None:
        super().__init__()
        self.phases: dict[str, float] = {}
        self.wait_began: float | None = None

    @contextlib.contextmanager
    def progress(self, description: str, total: int) -> Iterator[_Tick]:
        # "building hosts" -> build, "starting hosts" -> start
        with _phase(self.phases, description.split()[0].removesuffix("ing")):
            yield _Tick()

    def note(self, message: str) -> None:
        super().note(message)
        if message.startswith("waiting for") and self.wait_began is None:
            self.wait_began = time.perf_counter()


@dataclass
class CorralTimes:
    total: float
    phases: dict[str, float]


def run_corral(
    site: SiteConfig, path: Path, *, wait: bool, workers: int | None = None
) -> CorralTimes:
    """Seconds for ``up`` from a fresh session (as one CLI invocation would);
    ``workers`` overrides the session's own thread count."""
    reporter = PhaseReporter()
    started = time.perf_counter()
    session_args = ({} if workers is None
                    else {"per_host_workers": workers, "max_workers": workers})
    with Session(site, reporter, **session_args) as session:
        result = up(session, path, wait=wait)
    ended = time.perf_counter()
    if wait and not result.ok:
        failed = [f"{o.domain}: {o.reason}" for o in result.readiness if not o.ready]
        raise RuntimeError("corral up: hosts not ready: " + "; ".join(failed))
    phases = dict(reporter.phases)
    if reporter.wait_began is not None:
        phases["wait"] = ended - reporter.wait_began
    return CorralTimes(ended - started, phases)


def describe_phases(total: float, phases: dict[str, float]) -> str:
    """``build 1.2 + start 3.4 + wait 20.1 + rest 0.5``: rest is everything else."""
    parts = [f"{name} {phases[name]:.1f}" for name in ("build", "start", "wait") if name in phases]
    rest = total - sum(phases.get(name, 0.0) for name in ("build", "start", "wait"))
    return " + ".join([*parts, f"rest {rest:.1f}"])


@dataclass
class RawTimes:
    total: float = 0.0
    prepare: float = 0.0  # XML documents and seed ISOs (pure Python)
    phases: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_prepare(self, seconds: float) -> None:
        with self.lock:
            self.prepare += seconds


def run_raw(
    project: Project, template: Template, runs_dir: Path, *, wait: bool, workers: int,
    timeout_s: int,
) -> RawTimes:
    """The same network, pool, volumes and domains, straight through libvirt-python."""
    times = RawTimes()
    started = time.perf_counter()
    conn = libvirt.open(URI)
    try:
        switch = project.switches[SWITCH]
        leases = static_leases(project, SWITCH)
        t = time.perf_counter()
        net_xml = network_xml.to_string(network_xml.build_network(project.name, switch, leases))
        times.add_prepare(time.perf_counter() - t)
        network = conn.networkDefineXML(net_xml)
        network.create()
        pool = conn.storagePoolDefineXML(storage.pool_xml(project.name, str(runs_dir)), 0)
        pool.build(0)
        pool.create(0)
        boot = BootSpec.from_template(template)
        capacity = max(0, int(template.virtual_size or 0))
        network_name = names.network_name(project.name, SWITCH)

        def build(host_name: str) -> libvirt.virDomain:
            host = project.hosts[host_name]
            disk = pool.createXML(storage.overlay_xml(
                names.disk_volume(host.name), capacity, str(template.disk),
                template.format or "raw",
            ), 0)
            t0 = time.perf_counter()
            iso = build_seed(host, project.name)
            times.add_prepare(time.perf_counter() - t0)
            seed = pool.createXML(storage.raw_volume_xml(names.seed_volume(host.name), len(iso)), 0)
            seed_file = Path(seed.path())
            seed_file.write_bytes(iso)
            seed_file.chmod(0o644)
            t0 = time.perf_counter()
            xml = domain_xml.to_string(domain_xml.build_domain(DomainSpec(
                project=project.name,
                host=host,
                virt_type="qemu",
                boot=boot,
                disk_path=disk.path(),
                seed_path=seed.path(),
                nics=tuple(NicSpec(i.mac, network=network_name, name=i.name)
                           for i in host.interfaces),
                model_hash=host.model_hash(),
            ), console_log=console.log_path(str(runs_dir), project.name, host)))
            times.add_prepare(time.perf_counter() - t0)
            return conn.defineXML(xml)

        hosts = sorted(project.hosts)
        with ThreadPoolExecutor(max_workers=workers) as executor:
            with _phase(times.phases, "build"):
                domains = list(executor.map(build, hosts))
            with _phase(times.phases, "start"):
                list(executor.map(lambda domain: domain.create(), domains))
        if wait:
            with _phase(times.phases, "wait"):
                wait_for_consoles(project, hosts, str(runs_dir), timeout_s)
    finally:
        conn.close()
    times.total = time.perf_counter() - started
    return times


def wait_for_consoles(project: Project, hosts: list[str], runs_dir: str, timeout_s: int) -> None:
    """Poll the serial console logs (in the project's pool, where the domain XML puts
    them) until each guest printed its ready line."""
    pending = {
        h: Path(console.log_path(runs_dir, project.name, project.hosts[h])) for h in hosts
    }
    deadline = time.monotonic() + timeout_s
    while pending:
        for host, log in list(pending.items()):
            try:
                text = log.read_text(errors="replace")
            except FileNotFoundError:
                continue
            if ready_line(host) in text:
                del pending[host]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"raw: not ready after {timeout_s} s: {sorted(pending)}")
        time.sleep(POLL_S)


# ---------------------------------------------------------------- one comparison
@dataclass
class Samples:
    corral: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)


class Bench:
    """Owns the scratch site and every project it created, so it can sweep them all."""

    def __init__(
        self, root: Path, site: SiteConfig, variants: tuple[str, ...], workers: int,
        memory: int, ready_timeout: int,
    ) -> None:
        self.root = root
        self.memory = memory
        self.ready_timeout = ready_timeout
        self.site = site
        self.variants = variants
        self.workers = workers
        self.template = TemplateRegistry(site.paths.templates).get("tiny")
        self.created: list[str] = []
        self.cleanup_s = 0.0  # how long the last removal took (not timed in the figures)
        self._subnet = 0

    def _next_subnet(self) -> int:
        self._subnet = self._subnet % 250 + 1
        return self._subnet

    def _write(self, project: str, hosts: int, wait: bool) -> Path:
        return write_project(
            self.root, project, hosts, self._next_subnet(),
            f"console {self.ready_timeout}" if wait else "none", self.memory,
        )

    def corral_once(self, hosts: int, wait: bool) -> CorralTimes:
        project = project_name("bc")
        self.created.append(project)
        path = self._write(project, hosts, wait)
        try:
            return run_corral(self.site, path, wait=wait)
        finally:
            self.clean(project, through_corral=True)

    def raw_once(self, hosts: int, wait: bool) -> RawTimes:
        project = project_name("br")
        self.created.append(project)
        path = self._write(project, hosts, wait)
        model = load_project(path, self.site)
        try:
            return run_raw(model, self.template, self.site.paths.runs, wait=wait,
                           workers=self.workers, timeout_s=self.ready_timeout)
        finally:
            self.clean(project, through_corral=False)

    def clean(self, project: str, *, through_corral: bool) -> None:
        """Remove a project: with ``corral remove`` for corral's runs, then a sweep by name
        (which must then find nothing of corral's left)."""
        started = time.perf_counter()
        if through_corral:
            with Session(self.site) as session:
                remove(session, project)
        conn = libvirt.open(URI)
        try:
            left = sweep(conn, project)
        finally:
            conn.close()
        if through_corral and left:
            raise RuntimeError(f"corral remove left {', '.join(left)}")
        self.cleanup_s = time.perf_counter() - started

    def sweep_all(self) -> None:
        conn = libvirt.open(URI)
        try:
            for project in self.created:
                sweep(conn, project)
        finally:
            conn.close()

    def compare(self, hosts: int, repeat: int, wait: bool, log: Callable[[str], None]) -> Samples:
        samples = Samples()
        for rep in range(repeat):
            order = self.variants if rep % 2 == 0 else tuple(reversed(self.variants))
            for variant in order:
                mode = "ready" if wait else "started"
                if variant == "corral":
                    times = self.corral_once(hosts, wait)
                    samples.corral.append(times.total)
                    log(f"  N={hosts:<3} {mode:<7} corral {times.total:7.2f} s = "
                        f"{describe_phases(times.total, times.phases)}"
                        f"  (removed in {self.cleanup_s:.1f} s)")
                else:
                    raw = self.raw_once(hosts, wait)
                    samples.raw.append(raw.total)
                    log(f"  N={hosts:<3} {mode:<7} raw    {raw.total:7.2f} s = "
                        f"{describe_phases(raw.total, raw.phases)}"
                        f"  (removed in {self.cleanup_s:.1f} s; XML and seeds "
                        f"{raw.prepare:.2f} s of thread time)")
        return samples


# ---------------------------------------------------------------- main
def _row(mode: str, hosts: int, samples: Samples) -> str:
    corral = min(samples.corral) if samples.corral else None
    raw = min(samples.raw) if samples.raw else None
    ratio = f"{corral / raw:6.2f}" if corral and raw else "     -"
    verdict = ""
    if corral and raw:
        verdict = "ok" if corral / raw <= GOAL_RATIO else f"over {GOAL_RATIO}"
    show = (lambda v: f"{v:9.2f}" if v is not None else "        -")  # noqa: E731
    return f"{mode:<8} {hosts:>4} {show(corral)} {show(raw)} {ratio}  {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--repeat", type=int, default=2, help="runs per variant and size")
    parser.add_argument("--ready", action="store_true",
                        help="also time up-to-ready (every guest's corral-ready line)")
    parser.add_argument("--only-ready", action="store_true", help="time up-to-ready only")
    parser.add_argument("--variant", choices=("both", "corral", "raw"), default="both",
                        help="run one side only (e.g. under a profiler)")
    parser.add_argument("--memory", type=int, default=96, help="MiB per guest")
    parser.add_argument("--ready-timeout", type=int, default=600,
                        help="seconds a guest may take to print its ready line")
    parser.add_argument(
        "--kernel-args", default="no_timer_check",
        help="appended to the template copy's kernel command line (see README)")
    parser.add_argument("--workers", type=int, default=host_bound(os.cpu_count()),
                        help="threads for the raw variant's per-host work (corral's bound "
                        "for a service host with this machine's CPUs)")
    args = parser.parse_args(argv)
    problem = require_root_for(URI)
    if problem:
        print(f"up_vs_libvirt: {problem}", file=sys.stderr)
        return 2
    variants = ("corral", "raw") if args.variant == "both" else (args.variant,)
    modes = ([] if args.only_ready else [False]) + ([True] if args.ready or args.only_ready
                                                    else [])

    with interrupt_on_sigterm(), scratch_dir("corral-bench-up-") as root:
        site = site_config(root, URI)
        origin = register_tiny(site, root, args.kernel_args)
        bench = Bench(root, site, variants, args.workers, args.memory, args.ready_timeout)
        print(f"tiny template {origin}\n{URI}; raw per-host threads: {args.workers}; "
              f"corral per-host workers: {host_bound(os.cpu_count())}")
        results: list[tuple[str, int, Samples]] = []
        try:
            for wait in modes:
                for hosts in args.sizes:
                    samples = bench.compare(hosts, args.repeat, wait,
                                            lambda line: print(line, flush=True))
                    results.append(("ready" if wait else "started", hosts, samples))
        except KeyboardInterrupt:
            print("interrupted: removing what the benchmark created", file=sys.stderr)
            return 130
        except (CorralError, RuntimeError, libvirt.libvirtError) as error:
            print(f"up_vs_libvirt: failed: {error}", file=sys.stderr)
            return 1
        finally:
            bench.sweep_all()
    print()
    print(f"best of {args.repeat}; goal: corral / raw <= {GOAL_RATIO}")
    print(f"{'mode':<8} {'N':>4} {'corral s':>9} {'raw s':>9} {'ratio':>6}")
    for mode, hosts, samples in results:
        print(_row(mode, hosts, samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: Corral's ``up``, ``remove`` and ``status`` on one host against their floors.

Everything runs on the real local libvirtd in one process run, with the
project of ``up_vs_libvirt.py`` (N tiny guests on one switch with a host
address, even hosts static, odd on DHCP), each run with a fresh project name:

* **up** (define + start, no readiness wait; ``corral up --no-wait``):
  ``corral.ops.projects.up`` from a fresh session with Corral's own worker
  count, against the raw libvirt-python floor of ``up_vs_libvirt.py`` run
  once per candidate worker count. The floor is the best of those.
* **remove**: ``corral.ops.projects.remove`` from a fresh session right after
  Corral's ``up``, against a raw parallel teardown right after each raw
  ``up`` with the same worker count: every domain destroyed and undefined,
  every volume deleted, the network destroyed and undefined, the pool
  destroyed, deleted and undefined. The floor is the best worker count.
* **status** of the N running guests, right after Corral's ``up``:
  ``corral status -p P --json`` as a command, and
  ``corral.ops.status.status_report`` in process, against ``virsh domstats``
  of the same N domains (a command too; all its default statistics).

The worker counts are chosen from the work and the machine: the CPU count
times 1, 2, 4 and 8, kept when below N (and N itself when it is smaller),
plus Corral's own; ``--workers`` names them instead. Runs alternate which side
goes first. Goals: ``up`` within 1.1 x its floor, ``remove`` within 1.3 x,
``status`` within 1.5 x ``virsh domstats``.

    sudo .venv/bin/python bench/one_host_floors.py [--hosts 30] [--repeat 2] [--workers 2 4 8]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
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
from up_vs_libvirt import URI, run_corral, run_raw, write_project

from corral.backends.libvirt import names
from corral.config import SiteConfig
from corral.errors import CorralError
from corral.images.registry import TemplateRegistry
from corral.model.load import load_project
from corral.ops.projects import remove
from corral.ops.session import Session
from corral.ops.status import status_report
from corral.ops.workers import host_bound, overall_bound

GOALS = {"up": 1.1, "remove": 1.3, "status": 1.5}
REPO = Path(__file__).resolve().parent.parent


def worker_counts(hosts: int, corral_workers: int) -> list[int]:
    """Candidate thread counts for the raw floor: multiples of the CPU count
    below the number of hosts (the work), and Corral's own count."""
    cpus = os.cpu_count() or 1
    counts = {c * cpus for c in (1, 2, 4, 8) if c * cpus < hosts} or {hosts}
    return sorted(counts | {min(corral_workers, hosts)})


def raw_teardown(project: str, workers: int) -> float:
    """Seconds to remove the project's domains, volumes, network and pool straight
    through libvirt-python, per-object work on ``workers`` threads."""
    started = time.perf_counter()
    conn = libvirt.open(URI)
    try:
        prefix = f"{project}-"
        domains = [d for d in conn.listAllDomains(0) if d.name().startswith(prefix)]

        def drop_domain(domain: libvirt.virDomain) -> None:
            with contextlib.suppress(libvirt.libvirtError):
                domain.destroy()
            domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                                 | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)

        pool = conn.storagePoolLookupByName(names.pool_name(project))
        with ThreadPoolExecutor(max_workers=workers) as executor:
            list(executor.map(drop_domain, domains))
            pool.refresh(0)  # the console logs virtlogd wrote since the pool was listed
            list(executor.map(lambda v: v.delete(0), pool.listAllVolumes(0)))
        for network in conn.listAllNetworks(0):
            if network.name().startswith(prefix):
                network.destroy()
                network.undefine()
        pool.destroy()
        pool.delete(0)
        pool.undefine()
    finally:
        conn.close()
    return time.perf_counter() - started


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def run_quiet(command: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env,
                            stdin=subprocess.DEVNULL, check=False, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} {command[1]}... failed: {result.stderr.strip()}")


@dataclass
class Figures:
    """Every timing of the run, by what was timed."""

    corral: dict[str, list[float]] = field(default_factory=dict)
    raw_up: dict[int, list[float]] = field(default_factory=dict)
    raw_remove: dict[int, list[float]] = field(default_factory=dict)

    def add(self, key: str, seconds: float) -> None:
        self.corral.setdefault(key, []).append(seconds)


class Floors:
    """Owns the scratch site and every project it created, so it can sweep them all."""

    def __init__(self, root: Path, site: SiteConfig, hosts: int, memory: int) -> None:
        self.root = root
        self.site = site
        self.hosts = hosts
        self.memory = memory
        self.template = TemplateRegistry(site.paths.templates).get("tiny")
        self.created: list[str] = []
        # A random start, so two benchmarks on one daemon rarely pick the same subnet.
        self._subnet = random.randrange(250)
        self.figures = Figures()

    def _write(self, prefix: str) -> tuple[str, Path]:
        project = project_name(prefix)
        self.created.append(project)
        self._subnet = self._subnet % 250 + 1
        return project, write_project(self.root, project, self.hosts, self._subnet, "none",
                                      self.memory)

    def corral_round(self, status_repeat: int) -> str:
        project, path = self._write("fc")
        up = run_corral(self.site, path, wait=False).total
        domains = [names.domain_name(project, f"n{i:02d}") for i in range(self.hosts)]

        states: dict[str, int] = {}

        def in_process() -> None:
            with Session(self.site) as session:
                rows = status_report(session, project).rows
            if len(rows) != self.hosts:
                raise RuntimeError(f"status: {len(rows)} rows, expected {self.hosts}")
            states.clear()
            for row in rows:
                states[row.state] = states.get(row.state, 0) + 1

        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cli = [sys.executable, "-m", "corral", "--config", str(self.root / "corral.toml"),
               "status", "-p", project, "--json"]
        imports = [sys.executable, "-c", "import corral.cli.app, corral.cli.project_cmds, "
                   "corral.ops.status, corral.backends.libvirt.backend"]
        virsh = ["virsh", "-c", URI, "domstats", *domains]
        status_s = best_of(status_repeat, in_process)
        status_cli = best_of(status_repeat, lambda: run_quiet(cli, env))
        imports_s = best_of(status_repeat, lambda: run_quiet(imports, env))
        virsh_s = best_of(status_repeat, lambda: run_quiet(virsh))
        began = time.perf_counter()
        with Session(self.site) as session:
            remove(session, project)
        removed = time.perf_counter() - began
        left = self._sweep(project)
        if left:
            raise RuntimeError(f"corral remove left {', '.join(left)}")
        for key, value in (("up", up), ("remove", removed), ("status", status_s),
                           ("status CLI", status_cli), ("CLI imports", imports_s),
                           ("virsh domstats", virsh_s)):
            self.figures.add(key, value)
        seen = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        return (f"corral up {up:6.2f} s, remove {removed:6.2f} s, status {status_s:.3f} s "
                f"[{seen}] "
                f"(CLI {status_cli:.3f} s of which imports {imports_s:.3f} s; "
                f"virsh domstats {virsh_s:.3f} s)")

    def corral_at(self, workers: int) -> str:
        """``up`` and ``remove`` from sessions with ``workers`` threads (not Corral's
        default): how much of a gap to the floor is the worker count alone."""
        project, path = self._write("fw")
        try:
            up = run_corral(self.site, path, wait=False, workers=workers).total
            began = time.perf_counter()
            with Session(self.site, per_host_workers=workers, max_workers=workers) as session:
                remove(session, project)
            removed = time.perf_counter() - began
        finally:
            self._sweep(project)
        self.figures.add(f"up at {workers}", up)
        self.figures.add(f"remove at {workers}", removed)
        return f"corral at {workers:>2} workers: up {up:6.2f} s, remove {removed:6.2f} s"

    def raw_round(self, workers: int) -> str:
        project, path = self._write("fr")
        model = load_project(path, self.site)
        try:
            up = run_raw(model, self.template, self.site.paths.runs, wait=False,
                         workers=workers, timeout_s=0).total
            removed = raw_teardown(project, workers)
        finally:
            self._sweep(project)
        self.figures.raw_up.setdefault(workers, []).append(up)
        self.figures.raw_remove.setdefault(workers, []).append(removed)
        return f"raw {workers:>2} threads: up {up:6.2f} s, teardown {removed:6.2f} s"

    def _sweep(self, project: str) -> list[str]:
        conn = libvirt.open(URI)
        try:
            return sweep(conn, project)
        finally:
            conn.close()

    def sweep_all(self) -> None:
        for project in self.created:
            with contextlib.suppress(libvirt.libvirtError):
                self._sweep(project)


def report(figures: Figures, corral_workers: int) -> list[str]:
    """The table: Corral's best, the floor's best and at which worker count, the ratio."""
    lines = [f"{'what':<8} {'corral s':>9} {'floor s':>9} {'floor at':>9} {'ratio':>6} {'goal':>5}"]

    def row(what: str, corral: float, floor: float, at: str) -> None:
        ratio = corral / floor
        verdict = "ok" if ratio <= GOALS[what] else "over"
        lines.append(f"{what:<8} {corral:9.3f} {floor:9.3f} {at:>9} {ratio:6.2f} "
                     f"{GOALS[what]:5.1f}  {verdict}")

    for what, raw in (("up", figures.raw_up), ("remove", figures.raw_remove)):
        best = {w: min(times) for w, times in raw.items()}
        at = min(best, key=lambda w: best[w])
        row(what, min(figures.corral[what]), best[at], f"{at} thr")
    row("status", min(figures.corral["status"]), min(figures.corral["virsh domstats"]), "virsh")
    cli = min(figures.corral["status CLI"]) / min(figures.corral["virsh domstats"])
    lines.append(f"status as a command: {min(figures.corral['status CLI']):.3f} s, "
                 f"{cli:.2f} x virsh domstats; interpreter start and imports alone: "
                 f"{min(figures.corral['CLI imports']):.3f} s")
    for key in sorted(k for k in figures.corral if " at " in k):
        lines.append(f"corral {key} workers: {min(figures.corral[key]):.2f} s")
    for what, raw in (("up", figures.raw_up), ("remove", figures.raw_remove)):
        per = ", ".join(f"{w} thr {min(t):.2f} s" for w, t in sorted(raw.items()))
        lines.append(f"raw {what} by worker count: {per}; corral uses {corral_workers}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=2, help="rounds of every variant")
    parser.add_argument("--status-repeat", type=int, default=3,
                        help="status timings per Corral round (best kept)")
    parser.add_argument("--workers", type=int, nargs="+",
                        help="raw worker counts (default: from the CPU count and --hosts)")
    parser.add_argument("--corral-workers", type=int, nargs="*", default=[],
                        help="also time corral up/remove with sessions of these worker counts")
    parser.add_argument("--memory", type=int, default=96, help="MiB per guest")
    parser.add_argument("--kernel-args", default="no_timer_check",
                        help="appended to the template copy's kernel command line")
    args = parser.parse_args(argv)
    problem = require_root_for(URI)
    if problem:
        print(f"one_host_floors: {problem}", file=sys.stderr)
        return 2
    # what a session uses on this host by default: its per-host bound (see corral.ops.workers)
    corral_workers = min(host_bound(os.cpu_count()), overall_bound(args.hosts))
    counts = args.workers or worker_counts(args.hosts, corral_workers)
    with interrupt_on_sigterm(), scratch_dir("corral-bench-floors-") as root:
        site = site_config(root, URI)
        origin = register_tiny(site, root, args.kernel_args)
        floors = Floors(root, site, args.hosts, args.memory)
        print(f"tiny template {origin}\n{URI}; {args.hosts} hosts; {os.cpu_count()} CPUs; "
              f"raw worker counts {counts}; corral session workers {corral_workers}",
              flush=True)
        try:
            for rep in range(args.repeat):
                rounds: list[Callable[[], str]] = [
                    lambda: floors.corral_round(args.status_repeat),
                    *(lambda w=w: floors.raw_round(w) for w in counts),
                    *(lambda w=w: floors.corral_at(w) for w in args.corral_workers),
                ]
                for run in rounds if rep % 2 == 0 else list(reversed(rounds)):
                    print(f"  {run()}", flush=True)
        except KeyboardInterrupt:
            print("interrupted: removing what the benchmark created", file=sys.stderr)
            return 130
        except (CorralError, RuntimeError, libvirt.libvirtError) as error:
            print(f"one_host_floors: failed: {error}", file=sys.stderr)
            return 1
        finally:
            floors.sweep_all()
    print(f"\nbest of {args.repeat} rounds, N = {args.hosts}")
    for line in report(floors.figures, corral_workers):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

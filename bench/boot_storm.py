"""Boot-storm control: N tiny guests started all at once against the boot queue.

    sudo .venv/bin/python bench/boot_storm.py [--count 36] [--slots K]

Builds one project of N ``tiny`` guests (no switch, ``wait console``) on the
local libvirtd, then starts it twice in the same run with
``corral.ops.projects.start`` from a fresh session, the project removed and
rebuilt in between (untimed):

* **all at once** — ``boot_parallel = N``: every guest started at once, as
  Corral did before boot queues; its guests get ``--baseline-timeout`` (long,
  so that the time to all-ready is measured rather than cut off);
* **queued** — ``boot_parallel`` unset (chosen from the CPUs and their load,
  see docs/operations.md) or ``--slots K``; its guests get ``--timeout``,
  the default 180 s, so a guest that would time out in a plain ``up`` shows.

Per variant: seconds to all-ready (the ``start`` call), the median guest's
ready time counted from the command's start, the median boot (each guest's
start to its ready line) and how many were not ready. Then the ratios the
goal is stated in: all-ready queued / all at once (goal: at most 1), the
median guest's boot all at once / queued (goal: at least 5), and whether every
queued guest was ready within the default timeout.

The 5x is a guest's own boot, counted from its start as its readiness
timeout is: what a storm costs each guest (about 145 s against 15 s for 36
guests on two cores). Counted from the command's start the median cannot
gain 5x on a host whose CPUs the storm fills: the queue finishes no sooner
than the storm, so the median queued guest is ready after about half the
all-ready time, while the storm's guests all finish near its end; that
ratio (about 2 at most) is printed too, without a goal.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from dataclasses import dataclass
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

from corral.config import SiteConfig, parse_site_config
from corral.ops import projects
from corral.ops.reporting import SilentReporter
from corral.ops.results import HostReadiness
from corral.ops.session import Session

URI = "qemu:///system"


@dataclass(frozen=True)
class Run:
    variant: str
    slots: str
    all_ready_s: float
    median_ready_s: float  # from the command's start
    median_boot_s: float  # from each guest's own start
    not_ready: int
    reasons: tuple[str, ...]


def project_text(name: str, count: int, memory: int, timeout_s: int) -> str:
    hosts = "".join(f"host n{i:02d} {{ superclass node }}\n" for i in range(count))
    return (
        f"global {{ project {name} }}\n"
        "superclass node {\n    template tiny\n    qemu\n"
        f"    memory {memory}M\n    vcpus 1\n    wait console {timeout_s}\n}}\n"
        f"{hosts}"
    )


def variant_site(base: SiteConfig, slots: int | None) -> SiteConfig:
    """The scratch site with ``boot_parallel`` set on ``local`` (None: chosen)."""
    assert base.source is not None
    text = base.source.read_text()
    if slots is not None:
        text += f"boot_parallel = {slots}\n"
    return parse_site_config(text, base.source)


def one_run(
    site: SiteConfig, work: Path, variant: str, slots: int | None, count: int, memory: int,
    timeout_s: int,
) -> Run:
    name = project_name("bs")
    path = work / f"{name}.corral"
    path.write_text(project_text(name, count, memory, timeout_s))
    config = variant_site(site, slots)
    try:
        with Session(config) as session:
            projects.build(session, path)
        reporter = SilentReporter()
        with Session(config, reporter) as session:
            began = time.perf_counter()
            result = projects.start(session, name)
            elapsed = time.perf_counter() - began
        readiness: list[HostReadiness] = list(result.readiness)
    finally:
        with Session(config) as session:
            projects.remove(session, name)
        conn = libvirt.open(URI)
        try:
            sweep(conn, name)
        finally:
            conn.close()
    # The queue's size as start reported it ("booting N host(s) on local, at most K at once").
    told = [m.group(1) for n in reporter.notes if (m := re.search(r"at most (\d+) at once", n))]
    chosen = str(slots) if slots is not None else f"{told[0] if told else '?'} (chosen)"
    return Run(
        variant, chosen, elapsed,
        statistics.median(r.started_s + r.seconds for r in readiness),
        statistics.median(r.seconds for r in readiness),
        sum(not r.ready for r in readiness),
        tuple(f"{r.host}: {r.reason}" for r in readiness if not r.ready),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=36, help="guests (default 36)")
    parser.add_argument("--slots", type=int, default=None,
                        help="boot_parallel of the queued run (default: chosen)")
    parser.add_argument("--memory", type=int, default=96, help="MiB per guest (default 96)")
    parser.add_argument("--timeout", type=int, default=180,
                        help="readiness timeout of the queued run (default 180, Corral's)")
    parser.add_argument("--baseline-timeout", type=int, default=1800,
                        help="readiness timeout of the all-at-once run (default 1800)")
    args = parser.parse_args(argv)
    why = require_root_for(URI)
    if why:
        print(f"boot_storm: {why}", file=sys.stderr)
        return 1
    with interrupt_on_sigterm(), scratch_dir("corral-bootstorm-") as root:
        site = site_config(root, URI)
        print(f"tiny template: {register_tiny(site, root)}")
        runs = [
            one_run(site, root, "all at once", args.count, args.count, args.memory,
                    args.baseline_timeout),
            one_run(site, root, "queued", args.slots, args.count, args.memory, args.timeout),
        ]
    print(f"\n{args.count} tiny guests, {args.memory} MiB each, on {URI}\n")
    print(f"{'variant':<12} {'slots':>10} {'all ready':>10} {'median ready':>13} "
          f"{'median boot':>12} {'not ready':>10}")
    for run in runs:
        print(f"{run.variant:<12} {run.slots:>10} {run.all_ready_s:>9.1f}s "
              f"{run.median_ready_s:>12.1f}s {run.median_boot_s:>11.1f}s {run.not_ready:>10}")
        for reason in run.reasons[:5]:
            print(f"    {reason}")
    storm, queued = runs
    all_ratio = queued.all_ready_s / storm.all_ready_s
    boot_ratio = storm.median_boot_s / max(queued.median_boot_s, 0.1)
    ready_ratio = storm.median_ready_s / max(queued.median_ready_s, 0.1)
    print(f"\nall ready, queued / all at once: {all_ratio:.2f} (goal <= 1.00: "
          f"{'met' if all_ratio <= 1 else 'missed'})")
    print(f"median boot (own start to ready), all at once / queued: {boot_ratio:.1f}x "
          f"(goal >= 5x: {'met' if boot_ratio >= 5 else 'missed'})")
    print(f"median ready (from the command's start), all at once / queued: {ready_ratio:.1f}x")
    print(f"queued guests not ready within {args.timeout} s: {queued.not_ready} (goal 0: "
          f"{'met' if queued.not_ready == 0 else 'missed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: ``corral up`` of 30 tiny VMs spread over 3 service hosts against one.

The service hosts are fake hosts of ``scripts/fake-hosts`` (a libvirtd each,
in its own namespaces, reached over TLS), a harness of this benchmark's own
(its own state directory and a free ``10.NET`` range), always taken down at
the end, also after Ctrl-C or a failure. The ``tiny`` template goes into the
harness's site (a copy of the machine's registered one, or a fresh build),
which every fake host sees at the same path.

Two layouts of the same 30 hosts (96 MiB, one vCPU, TCG, one switch with a
host address, even hosts static, odd on DHCP), in the same run, alternating
which goes first, each with a fresh project name:

* **spread**: host *i* has ``service_host h{1 + i % 3}`` (round robin);
* **one host**: every host has ``service_host h1``.

``up`` is ``corral.ops.projects.up(session, file, wait=False)`` from a fresh
session (``corral up --no-wait``: defined and started, no readiness wait), so
the figure is Corral's work, not the guests' boot under TCG. Every project is
removed with ``corral remove`` (not timed) before the next run. The ratio
one host / spread shows how much the service hosts' work overlaps; all fake
hosts share this machine's CPUs, so it cannot reach 3.

    sudo .venv/bin/python bench/up_many_hosts.py [--hosts 30] [--service-hosts 3] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import libvirt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    FakeHarness,
    fake_hosts,
    interrupt_on_sigterm,
    project_name,
    register_tiny,
    scratch_dir,
)
from up_vs_libvirt import describe_phases, run_corral

from corral.config import SiteConfig, parse_site_config
from corral.errors import CorralError
from corral.ops.projects import remove
from corral.ops.session import Session

SWITCH = "lan"


def project_text(project: str, hosts: int, service_hosts: list[str], memory: int) -> str:
    """``hosts`` tiny hosts, host i on ``service_hosts[i % len]``, a switch with a
    host address per service host (a LAN across service hosts would need site
    bridges and no host address); even hosts static, odd on DHCP."""
    lines = [
        f"global {{ project {project} }}",
        "superclass node {",
        "    template tiny",
        "    qemu",
        f"    memory {memory}M",
        "    vcpus 1",
        "    wait none",
        "}",
    ]
    lans = {name: (f"{SWITCH}{k}", f"10.249.{k + 1}") for k, name in enumerate(service_hosts)}
    lines += [f"switch {switch} {{ address {net}.1/24 }}" for switch, net in lans.values()]
    for i in range(hosts):
        where = service_hosts[i % len(service_hosts)]
        switch, net = lans[where]
        if i % 2 == 0:
            nic = [f"address {net}.{10 + i}", "netmask 255.255.255.0", f"gateway {net}.1"]
        else:
            nic = ["address dhcp"]
        lines += [
            f"host n{i:02d} {{",
            "    superclass node",
            f"    service_host {where}",
            "    network eth0 {",
            f"        switch {switch}",
            *(f"        {statement}" for statement in nic),
            "    }",
            "}",
        ]
    return "\n".join(lines) + "\n"


class Runs:
    """The harness's site, and the projects created in it (to remove them all)."""

    def __init__(self, root: Path, site: SiteConfig, hosts: int, memory: int) -> None:
        self.root = root
        self.site = site
        self.hosts = hosts
        self.memory = memory
        self.created: list[str] = []

    def once(self, service_hosts: list[str]) -> tuple[float, str]:
        """Seconds for ``up`` of a fresh project on ``service_hosts``, and its phases."""
        project = project_name("bm")
        self.created.append(project)
        path = self.root / f"{project}.corral"
        path.write_text(project_text(project, self.hosts, service_hosts, self.memory))
        try:
            times = run_corral(self.site, path, wait=False)
        finally:
            self.remove(project)
        return times.total, describe_phases(times.total, times.phases)

    def remove(self, project: str) -> None:
        with Session(self.site) as session:
            try:
                remove(session, project)
            except CorralError as error:
                if "has nothing" not in str(error):
                    raise

    def remove_all(self) -> None:
        for project in self.created:
            try:
                self.remove(project)
            except (CorralError, libvirt.libvirtError) as error:
                print(f"removing {project}: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=30, help="VMs in the project")
    parser.add_argument("--service-hosts", type=int, default=3, help="fake service hosts")
    parser.add_argument("--repeat", type=int, default=2, help="runs per layout")
    parser.add_argument("--memory", type=int, default=96, help="MiB per guest")
    parser.add_argument("--kernel-args", default="no_timer_check",
                        help="appended to the template copy's kernel command line")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("up_many_hosts: fake hosts need root", file=sys.stderr)
        return 2
    spread = [f"h{i}" for i in range(1, args.service_hosts + 1)]
    layouts = {"spread": spread, "one host": spread[:1]}
    samples: dict[str, list[float]] = {name: [] for name in layouts}
    with interrupt_on_sigterm(), scratch_dir("corral-bench-upmh-") as root:
        runs: Runs | None = None
        try:
            with fake_hosts(root, args.service_hosts) as harness:
                runs = start(root, harness, args)
                try:
                    for rep in range(args.repeat):
                        order = list(layouts) if rep % 2 == 0 else list(reversed(layouts))
                        for name in order:
                            seconds, phases = runs.once(layouts[name])
                            samples[name].append(seconds)
                            print(f"  {name:<8} ({', '.join(layouts[name])}): {seconds:6.2f} s"
                                  f" = {phases}", flush=True)
                finally:
                    runs.remove_all()
        except KeyboardInterrupt:
            print("interrupted: removing the projects, taking the fake hosts down",
                  file=sys.stderr)
            return 130
        except (CorralError, RuntimeError, libvirt.libvirtError) as error:
            print(f"up_many_hosts: failed: {error}", file=sys.stderr)
            return 1
    one, many = min(samples["one host"]), min(samples["spread"])
    print(f"\nbest of {args.repeat}: up of {args.hosts} VMs (no readiness wait)")
    print(f"{'layout':<28} {'seconds':>8}")
    print(f"{'all on h1':<28} {one:8.2f}")
    print(f"{'round robin over ' + ', '.join(spread):<28} {many:8.2f}")
    print(f"one host / spread: {one / many:.2f} (parallelism over {args.service_hosts} "
          f"service hosts sharing {os.cpu_count()} CPUs)")
    return 0


def start(root: Path, harness: FakeHarness, args: argparse.Namespace) -> Runs:
    """The harness's site with the tiny template registered in it."""
    site = parse_site_config(harness.toml.read_text(), harness.toml)
    origin = register_tiny(site, root, args.kernel_args)
    print(f"{args.service_hosts} fake hosts up in {harness.seconds:.1f} s "
          f"(10.{harness.net}.*); tiny template {origin}", flush=True)
    return Runs(root, site, args.hosts, args.memory)


if __name__ == "__main__":
    sys.exit(main())

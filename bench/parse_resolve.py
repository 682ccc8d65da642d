"""Benchmark: load a 10,000-host project (parse, include, expand, resolve, build).

The generated project mixes the two ways large projects are written: 5,000
hosts from ``autoenum`` and 5,000 written out in ten included files, all
inheriting through three levels of superclasses. ``load_project`` is timed
best of three; the goal is under 2 s on a 2-core machine.

    .venv/bin/python bench/parse_resolve.py [--hosts N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from corral.config import SiteConfig
from corral.lang.load import load_document
from corral.model.load import load_project
from corral.plugins.registry import PluginRegistry

GOAL_S = 2.0
INCLUDE_FILES = 10

MAIN = """\
global {{
    project bench
    $gateway = 10.0.0.1
    autoenum {{
        superclass node
        numhosts {generated}
        address auto
        addresses begin 10
        net 10.0.0.0
        netmask 255.255.0.0
        service_hosts {{
            #include servers.txt
        }}
    }}
}}
#include classes.mln
switch lan {{ address 10.0.0.1/16 }}
switch backend {{ address 10.254.0.1/24; nat }}
{includes}
"""

CLASSES = """\
superclass base {
    kvm
    memory 256M
    template tiny
    network eth0 {
        switch lan
        gateway $gateway
    }
    users { admin $6$salt$hash }
}
superclass mid {
    superclass base
    vcpus 2
    network eth1 {
        switch backend
        address dhcp
    }
}
superclass node {
    superclass mid
    memory 512M
    packages { curl vim }
}
"""

HOST = """\
host web{index} {{
    superclass node
    service_host s{server}
    network eth0 {{
        address 10.0.{high}.{low}
    }}
}}
"""


def write_project(directory: Path, hosts: int) -> Path:
    """Write the benchmark project into ``directory``; returns the main file."""
    generated = hosts // 2
    written = hosts - generated
    per_file = -(-written // INCLUDE_FILES)
    includes = []
    for part in range(INCLUDE_FILES):
        numbers = range(part * per_file, min(written, (part + 1) * per_file))
        text = "".join(
            HOST.format(index=i, server=i % 8, high=100 + i // 250, low=i % 250 + 1)
            for i in numbers
        )
        (directory / f"hosts{part}.mln").write_text(text)
        includes.append(f"#include hosts{part}.mln")
    (directory / "servers.txt").write_text(" ".join(f"s{i}" for i in range(8)) + "\n")
    (directory / "classes.mln").write_text(CLASSES)
    main = directory / "bench.mln"
    main.write_text(MAIN.format(generated=generated, includes="\n".join(includes)))
    return main


def best_of(runs: int, path: Path) -> tuple[float, float, int]:
    """Best total ``load_project`` time, best ``load_document`` share, host count."""
    site, plugins = SiteConfig(), PluginRegistry.from_entry_points()
    totals, parses, count = [], [], 0
    for _ in range(runs):
        start = time.perf_counter()
        project = load_project(path, site, plugins)
        totals.append(time.perf_counter() - start)
        count = len(project.hosts)
        start = time.perf_counter()
        load_document(path)
        parses.append(time.perf_counter() - start)
    return min(totals), min(parses), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        path = write_project(Path(tmp), args.hosts)
        seconds, parse, count = best_of(args.runs, path)
    print(
        f"parse+resolve of {count} hosts: {seconds:.2f} s (best of {args.runs}; "
        f"parse, includes and variables alone {parse:.2f} s); "
        f"goal {GOAL_S:.1f} s; ratio {seconds / GOAL_S:.2f} of goal"
    )


if __name__ == "__main__":
    main()

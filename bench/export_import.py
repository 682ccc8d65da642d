"""Benchmark: ``corral export`` and ``corral import`` of a 3-host project against
plain copies of the same volumes, in the same run.

A scratch site (``local`` only) with the tiny template; a project of three
tiny guests, each with a 128 MiB extra disk holding 64 MiB of data, brought up and running, so each
run copy holds what a booted guest wrote. Then, best of ``--repeat``:

* **export, overlays**: ``export_project`` (the run copies, extra disks and
  seeds read through libvirt download streams and hashed, each guest paused
  for its copy; the template's files copied in) against the floor ``cp`` of
  the same volume files and template files from the pool and registry
  directories (no hashing, no libvirt, guests running).
* **export, flattened**: ``export_project(flatten=True)`` against the floor
  ``qemu-img convert -O qcow2`` of each run copy (straight from the pool,
  through its backing template) plus ``cp`` of the extra disks and seeds.
* **export -z**: the overlay archive packed into ``.tar.gz``; its size only.
* **import** (overlays, flattened): ``import_project`` under a new name (every
  file checked against its sha256, each overlay's header pointed at the
  template, the volumes written through upload streams, the project built:
  seeds and domains) against the floor ``cp`` of the archive's volume files
  into a directory. Each import is removed again, untimed.

The sizes are the archive's bytes against the volumes' own. Ratios are
reported, not judged: the floors do none of the checking.

    sudo .venv/bin/python bench/export_import.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import libvirt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    interrupt_on_sigterm,
    project_name,
    register_tiny,
    require_root_for,
    scratch_dir,
    site_config,
    sweep,
)

from corral.config import SiteConfig  # noqa: E402
from corral.ops import projects  # noqa: E402
from corral.ops.archive import export_project  # noqa: E402
from corral.ops.archive_import import import_project  # noqa: E402
from corral.ops.reporting import SilentReporter  # noqa: E402
from corral.ops.session import Session  # noqa: E402

URI = "qemu:///system"
HOSTS = ("web", "db", "cache")


def project_text(name: str) -> str:
    hosts = "".join(
        f"host {h} {{ template tiny; memory 96M; disk data {{ size 128M }}; "
        f"network eth0 {{ switch lan }} }}\n" for h in HOSTS)
    # no address: the imports beside the project on this machine do not clash with it
    return f"global {{ project {name} }}\n{hosts}switch lan {{ }}\n"


def fill(pool: Path, mib: int) -> None:
    """Write ``mib`` MiB of a pattern per host into its extra disk (``qemu-io``), so
    the archive carries data, not just empty images."""
    for disk in sorted(pool.glob("*.data.qcow2")):
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {mib}M", str(disk)],
                       check=True, capture_output=True)


def timed(work: Callable[[], object]) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--fill", type=int, default=64, metavar="MIB",
                        help="MiB written into each extra disk before the guests start")
    args = parser.parse_args()
    refused = require_root_for(URI)
    if refused:
        print(refused, file=sys.stderr)
        return 2
    with interrupt_on_sigterm(), scratch_dir("corral-bench-archive-") as root:
        (root / "runs").mkdir(mode=0o755)
        site = site_config(root, URI)
        print(f"tiny template: {register_tiny(site, root)}")
        name = project_name("bx")
        file = root / f"{name}.corral"
        file.write_text(project_text(name))
        conn = libvirt.open(URI)
        try:
            projects.build(Session(site, SilentReporter()), file)
            fill(root / "runs" / name, args.fill)
            up = projects.up(Session(site, SilentReporter()), file)
            if up.failed or not all(r.ready for r in up.readiness):
                print(f"the project did not come up: {up.failed}", file=sys.stderr)
                return 1
            return run(site, root, name, args.repeat)
        finally:
            for project in (name, f"{name}i", f"{name}f", f"{name}b"):
                sweep(conn, project)
            conn.close()


def run(site: SiteConfig, root: Path, name: str, repeat: int) -> int:
    pool = root / "runs" / name
    template = site.paths.templates / "tiny"
    volumes = sorted(p for p in pool.iterdir() if p.name.endswith((".qcow2", "-seed.iso"))
                     and not p.name.startswith("boot-"))
    template_files = sorted(p for p in template.iterdir() if p.name != "manifest.json")
    own = sum(p.stat().st_size for p in volumes)
    best: dict[str, float] = {}
    sizes: dict[str, int] = {}

    def keep(key: str, seconds: float) -> None:
        best[key] = min(seconds, best.get(key, seconds))

    for round_ in range(repeat):
        one_round(site, root / f"out{round_}", name, volumes, template_files, keep, sizes)

    mib = 1 << 20
    print(f"\n3 running tiny guests, volumes {own / mib:.1f} MiB (+ template "
          f"{sum(p.stat().st_size for p in template_files) / mib:.1f} MiB); "
          f"best of {repeat}\n")
    print(f"{'operation':<22}{'seconds':>9}{'floor':>9}{'ratio':>8}  floor is")
    rows = [("export", "export floor", "cp of the volumes and template files"),
            ("export --flatten", "flatten floor", "qemu-img convert of each run copy + cp"),
            ("import", "import floor", "cp of the archive's disks"),
            ("import", "build + cp floor", "corral build of the same project + that cp"),
            ("import (flattened)", "build + cp floor",
             "corral build of the same project + that cp")]
    for key, floor_key, what in rows:
        print(f"{key:<22}{best[key]:>9.2f}{best[floor_key]:>9.2f}"
              f"{best[key] / best[floor_key]:>8.1f}  {what}")
    print(f"{'export -z':<22}{best['export -z']:>9.2f}")
    print(f"\n{'archive':<22}{'MiB':>9}{'x volumes':>11}")
    for key in ("overlays", "flattened", "-z", "flatten floor"):
        print(f"{key:<22}{sizes[key] / mib:>9.1f}{sizes[key] / own:>11.2f}")
    return 0


def one_round(
    site: SiteConfig, out: Path, name: str, volumes: list[Path], template_files: list[Path],
    keep: Callable[[str, float], None], sizes: dict[str, int],
) -> None:
    """One repetition of every measurement, in ``out`` (removed afterwards)."""
    out.mkdir()
    floor = out / "floor"
    floor.mkdir()
    keep("export floor", timed(lambda: [shutil.copy(p, floor) for p in
                                         (*volumes, *template_files)]))
    flat_floor = out / "flat-floor"
    flat_floor.mkdir()

    def flatten_floor() -> None:
        for path in volumes:
            if path.name.endswith(".qcow2") and ".data." not in path.name:
                subprocess.run(["qemu-img", "convert", "-U", "-O", "qcow2", str(path),
                                str(flat_floor / path.name)], check=True)
            else:
                shutil.copy(path, flat_floor)

    keep("flatten floor", timed(flatten_floor))
    overlay_dir, flat_dir, packed_dir = out / "o", out / "f", out / "z"
    for directory in (overlay_dir, flat_dir, packed_dir):
        directory.mkdir()
    keep("export", timed(lambda: export_project(
        Session(site, SilentReporter()), name, overlay_dir)))
    keep("export --flatten", timed(lambda: export_project(
        Session(site, SilentReporter()), name, flat_dir, flatten=True)))
    keep("export -z", timed(lambda: export_project(
        Session(site, SilentReporter()), name, packed_dir, compress=True)))
    sizes["overlays"] = size(overlay_dir / name)
    sizes["flattened"] = size(flat_dir / name)
    sizes["-z"] = size(packed_dir / f"{name}.tar.gz")
    sizes["flatten floor"] = size(flat_floor)
    copy_floor = out / "copy-floor"
    copy_floor.mkdir()
    archived = [p for p in (overlay_dir / name / "hosts").rglob("*.qcow2")]
    copied = timed(lambda: [shutil.copy(p, copy_floor) for p in archived])
    keep("import floor", copied)
    # a fresh build of the same project (overlays on the template, seeds, domains)
    # plus the copy of the disks: what an import costs without archives
    fresh = out / f"{name}b.corral"
    fresh.write_text(project_text(f"{name}b"))
    built = timed(lambda: projects.build(Session(site, SilentReporter()), fresh))
    keep("build + cp floor", built + copied)
    projects.remove(Session(site, SilentReporter()), f"{name}b")
    for key, directory, new in (("import", overlay_dir, f"{name}i"),
                                ("import (flattened)", flat_dir, f"{name}f")):
        result = None

        def imported(directory: Path = directory, new: str = new) -> None:
            nonlocal result
            result = import_project(Session(site, SilentReporter()), name, directory,
                                    new_name=new)

        keep(key, timed(imported))
        assert result is not None and not result.applied.failed, result
        projects.remove(Session(site, SilentReporter()), new)
        shutil.rmtree(directory / f"{new}.project")
    shutil.rmtree(out)



if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: live migration of one tiny VM, ``corral vm migrate`` against ``virsh migrate --live``.

Two fake service hosts (``scripts/fake-hosts``, with a state directory and a
NET of their own) and one tiny guest, started on h1. Each repetition moves it
to h2 and back, once with each tool, in the same run: Corral there and virsh
back in even repetitions, virsh there and Corral back in odd ones, so that
neither always has the same direction or goes first:

* **corral**: ``corral.ops.migrate.vm_migrate(session, "P.vm", "h2",
  update_file=False)`` from a fresh Session: the TLS connections, the
  project's observation on every service host, the shared-storage probe, the
  target's preparation (pool, seed, kernel/initrd copies, network, overlays),
  the migration, the redefinition with Corral's metadata on the target, and
  the clean-up of the source.
* **virsh**: ``virsh -c SRC migrate --live --persistent --undefinesource
  [--copy-storage-inc] DOMAIN DST tcp://ADDRESS``: the migration alone, the
  target's volumes having been prepared (untimed) with the same Corral calls;
  and, where Corral's move moves the switch's network too (``alone`` below),
  the same with the ``virsh`` commands that do that, timed:
  ``net-define`` and ``net-start`` on the target before the move (the XML
  Corral makes there), ``net-destroy`` and ``net-undefine`` on the source
  after it.

Two storage modes: ``shared`` (``filepath`` on the directory every fake host
sees: memory moves, disks stay) and ``copied`` (the run copy in each host's own
pool: its top layer is copied during the migration). Two layouts of the
guest's switch:

* ``alone``: the guest is the switch's only VM (DHCP), so a move must also
  start the switch's network on the target and retire it on the source:
  Corral's does, and virsh's leg does it with virsh's network commands (its
  figure is given with and without them);
* ``spanning``: one more guest on the switch on each host (the switch joined
  through the site bridge, static addresses), so the network is there on
  both hosts before and after, and both legs move the guest and nothing
  else: the like-for-like comparison.

The table gives the best of the repetitions and the ratios against virsh's
migration alone and against virsh doing the same work (the migration and,
in ``alone``, the network); the goal, on the second, is at most 1.1.

    sudo .venv/bin/python bench/migrate_vs_virsh.py [--repeat 3] [--modes shared copied]
        [--layouts alone spanning]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libvirt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interrupt_on_sigterm, project_name  # noqa: E402

from corral.backends.base import StoragePlace  # noqa: E402
from corral.backends.libvirt import migration  # noqa: E402
from corral.config import SiteConfig, parse_site_config  # noqa: E402
from corral.errors import CorralError  # noqa: E402
from corral.ops import migrate as migrate_ops  # noqa: E402
from corral.ops import projects  # noqa: E402
from corral.ops.apply import ensure_switches  # noqa: E402
from corral.ops.migrate import prepare_target, vm_migrate  # noqa: E402
from corral.ops.session import Session  # noqa: E402
from corral.ops.source import ProjectSource  # noqa: E402
from corral.ops.templates import build_template  # noqa: E402

SCRIPT = REPO / "scripts" / "fake-hosts"
GOAL = 1.1
# The guest boots before the first move (a tiny guest takes 10-20 s under TCG
# here), and each leg begins after the same pause, so that neither starts
# while the other's move still loads the two daemons and the guest.
SETTLE_S = 20.0
BETWEEN_S = 3.0


class Spans:
    """Seconds spent in the steps of Corral's moves that the breakdown names: the
    migration call itself (``virDomainMigrate3``) and the retirement of the
    source's networks the guest no longer needs (which virsh's leg leaves
    running). Wrapped around the functions in this process only, to time them."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def wrap(self, owner: object, attribute: str, label: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args: object, **kwargs: object) -> object:
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.last[label] = self.last.get(label, 0.0) + time.perf_counter() - began

        setattr(owner, attribute, timed)


SPANS = Spans()
SPANS.wrap(libvirt.virDomain, "migrate3", "migrate3")
SPANS.wrap(migrate_ops, "retire_networks", "retire")
# The other steps of a move, in the order they begin; those on one line of
# STEPS run at the same time as each other (see corral.ops.migrate).
SPANS.wrap(migrate_ops, "sight", "sight")
SPANS.wrap(migrate_ops, "ensure_switches", "switches")
SPANS.wrap(migrate_ops, "prepare_target", "prepare")
SPANS.wrap(migrate_ops, "update_host", "define")
SPANS.wrap(migrate_ops, "release_shared_pools", "pools")
STEPS = (("sight",), ("switches", "prepare"), ("migrate3",), ("define", "pools", "retire"))


def _project(name: str, host: str, filepath: Path | None, subnet: int, layout: str) -> str:
    storage = f"    filepath {filepath}\n" if filepath else ""
    if layout == "alone":
        return (
            f"global {{\n    project {name}\n}}\n"
            f"host vm {{\n    template tiny\n    service_host {host}\n{storage}"
            "    network eth0 {\n        switch lan\n        address dhcp\n    }\n}\n"
            f"switch lan {{ address 10.{subnet}.7.1/24 }}\n"
        )
    guests = [("vm", host, storage, 11), ("peer1", "h1", "", 12), ("peer2", "h2", "", 13)]
    return f"global {{\n    project {name}\n}}\nswitch lan {{ }}\n" + "".join(
        f"host {guest} {{\n    template tiny\n    service_host {place}\n{extra}"
        f"    network eth0 {{\n        switch lan\n        address 10.{subnet}.7.{last}\n"
        "        netmask 24\n    }\n}\n"
        for guest, place, extra, last in guests)


class Harness:
    """Two fake hosts of this benchmark's own, taken down at the end."""

    def __init__(self, root: Path) -> None:
        self.state = root / "state"
        self.toml = root / "corral.toml"
        self.net = random.choice([n for n in range(100, 240)
                                  if not Path(f"/sys/class/net/cfh{n}-site").exists()])
        self.env = {**os.environ, "CORRAL_FAKE_HOSTS_DIR": str(self.state),
                    "CORRAL_FAKE_HOSTS_NET": str(self.net)}

    def script(self, *args: str) -> None:
        result = subprocess.run([sys.executable, str(SCRIPT), *args], env=self.env,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"fake-hosts {' '.join(args)}: {result.stderr.strip()}")

    def __enter__(self) -> Harness:
        self.script("up", "2", str(self.toml))
        return self

    def __exit__(self, *_exc: object) -> None:
        self.script("down")

    def site_for(self, layout: str) -> Path:
        """The harness's site config; for ``spanning``, with h1 and h2 joined to the
        site bridge, so a switch may have VMs on both."""
        if layout == "alone":
            return self.toml
        text = self.toml.read_text()
        for name in ("h1", "h2"):
            text = text.replace(f"[service_hosts.{name}]\n",
                                f'[service_hosts.{name}]\nsite_bridge = "cfh{self.net}-site"\n')
        path = self.toml.with_name("corral-spanning.toml")
        path.write_text(text)
        return path


def _virsh_migrate(session: Session, domain: str, source: str, target: str,
                   copy: bool) -> float:
    site = session.site
    address = site.service_hosts[target].migration_address
    # The guest boots from each service host's own kernel and initrd copies, so the
    # target's XML names its own (what Corral's move does; untimed here).
    here = session.backend(source).conn  # type: ignore[attr-defined]
    there = session.backend(target).conn  # type: ignore[attr-defined]
    handle = here.lookupByName(domain)
    flags = libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_MIGRATABLE
    live = Path(tempfile.mkstemp(prefix="virsh-live-", suffix=".xml")[1])
    persistent = Path(tempfile.mkstemp(prefix="virsh-persistent-", suffix=".xml")[1])
    live.write_text(migration.retarget(handle.XMLDesc(flags), here, there, domain, target))
    persistent.write_text(migration.retarget(
        handle.XMLDesc(flags | libvirt.VIR_DOMAIN_XML_INACTIVE), here, there, domain, target))
    argv = ["virsh", "-c", site.service_hosts[source].uri, "migrate", "--live", "--persistent",
            "--undefinesource", *(["--copy-storage-inc"] if copy else ["--unsafe"]),
            "--xml", str(live), "--persistent-xml", str(persistent), domain,
            site.service_hosts[target].uri, f"tcp://{address}"]
    began = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    live.unlink()
    persistent.unlink()
    if result.returncode != 0:
        raise RuntimeError(f"virsh migrate: {result.stderr.strip()}")
    return seconds


def _prepare_for_virsh(session: Session, file: Path, name: str, source: str,
                       target: str) -> bool:
    """Make ``target`` ready for virsh as Corral would; whether disks are copied."""
    project = ProjectSource(file.read_text(), file.name, file.parent).load(session.site)
    host = project.hosts["vm"].model_copy(update={"service_host": target})
    ensure_switches(session, project.model_copy(update={"hosts": {**project.hosts, "vm": host}}))
    source_backend, target_backend = session.backend(source), session.backend(target)
    place = StoragePlace.of(host)
    shared = source_backend.shares_storage_with(target_backend, name, place)
    prepare_target(session, name, host, target_backend, place, source_backend.observe(name),
                   copy_disks=not shared)
    return not shared


def _virsh_leg(site: SiteConfig, file: Path, name: str, source: str, target: str,
               shared: Path | None, layout: str) -> tuple[float, float]:
    """virsh's move of the guest, the target's volumes prepared untimed; then what
    Corral cleans after a move and virsh leaves: the source's volumes, or its
    definition of the shared pool. In the ``alone`` layout virsh also moves the
    switch's network, as one must to end where Corral's move ends: defined and
    started on the target before the move, destroyed and undefined on the
    source after it. The seconds of the move and of the network's."""
    with Session(site) as session:
        copy = _prepare_for_virsh(session, file, name, source, target)
        networks = _networks_for_virsh(session, name, target) if layout == "alone" else []
        time.sleep(BETWEEN_S)
        network_s = sum(_virsh(site, target, command)
                        for xml, network in networks
                        for command in (["net-define", str(xml)], ["net-start", network]))
        seconds = _virsh_migrate(session, f"{name}-vm", source, target, copy)
        network_s += sum(_virsh(site, source, command)
                         for _, network in networks
                         for command in (["net-destroy", network], ["net-undefine", network]))
        for xml, _ in networks:
            xml.unlink()
        if copy:
            session.backend(source).delete_volumes(name, "vm")
        else:
            session.backend(source).forget_pool(name, StoragePlace(directory=str(shared)))
    return seconds, network_s


def _networks_for_virsh(session: Session, name: str, target: str) -> list[tuple[Path, str]]:
    """The project's networks as Corral made them on ``target`` (their XML saved to
    files), taken away again, for virsh to make there: ``(file, network)``."""
    conn = session.backend(target).conn  # type: ignore[attr-defined]
    saved = []
    for seen in session.backend(target).observe(name).networks:
        network = conn.networkLookupByName(seen.name)
        xml = Path(tempfile.mkstemp(prefix="virsh-net-", suffix=".xml")[1])
        xml.write_text(network.XMLDesc(0))
        network.destroy()
        network.undefine()
        saved.append((xml, seen.name))
    return saved


def _virsh(site: SiteConfig, service_host: str, command: list[str]) -> float:
    """``virsh -c URI COMMAND`` on ``service_host``: its seconds."""
    argv = ["virsh", "-c", site.service_hosts[service_host].uri, *command]
    began = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    if result.returncode != 0:
        raise RuntimeError(f"virsh {' '.join(command)}: {result.stderr.strip()}")
    return seconds


def run_mode(
    harness: Harness, mode: str, layout: str, repeat: int, profile: int = 0
) -> tuple[list[float], list[float], list[float], list[dict[str, float]]]:
    toml = harness.site_for(layout)
    site = parse_site_config(toml.read_text(), toml)
    name = project_name("mg")
    file = harness.toml.parent / f"{name}.corral"
    shared = harness.state / "shared" if mode == "shared" else None
    file.write_text(_project(name, "h1", shared, random.randint(100, 239), layout))
    corral_s: list[float] = []
    virsh_s: list[float] = []
    network_s: list[float] = []
    spans: list[dict[str, float]] = []
    profiler = cProfile.Profile() if profile else None
    with Session(site) as session:
        projects.up(session, file, wait=False)
    time.sleep(SETTLE_S)
    try:
        # The guest is on h1 when each repetition begins. Even ones: Corral moves it
        # to h2 and virsh back; odd ones: virsh first, to h2, and Corral back; so
        # neither tool always has the same direction, nor always goes first.
        for turn in range(repeat + (1 if profile else 0)):
            corral_first = turn % 2 == 0 or len(corral_s) == repeat
            if not corral_first:
                leg, network = _virsh_leg(site, file, name, "h1", "h2", shared, layout)
                virsh_s.append(leg)
                network_s.append(network)
            time.sleep(BETWEEN_S)
            source, target = ("h1", "h2") if corral_first else ("h2", "h1")
            began = time.perf_counter()
            with Session(site) as session:
                if profiler is not None and len(corral_s) == repeat:  # an extra last move
                    result = profiler.runcall(vm_migrate, session, f"{name}.vm", target,
                                              update_file=False)
                    print(f"profile of one more move ({mode}, {layout}; parallel steps show "
                          "as waits):")
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(profile)
                    profiler = None
                else:
                    SPANS.last = {}
                    result = vm_migrate(session, f"{name}.vm", target, update_file=False)
                    corral_s.append(time.perf_counter() - began)
                    spans.append(SPANS.last)
            assert result.source == source
            assert result.mode == "live" and result.shared_storage == (mode == "shared")
            if corral_first:
                leg, network = _virsh_leg(site, file, name, "h2", "h1", shared, layout)
                virsh_s.append(leg)
                network_s.append(network)
    finally:
        with Session(site) as session:
            try:
                projects.remove(session, name)
            except CorralError as error:
                print(f"migrate_vs_virsh: removing {name}: {error.message}", file=sys.stderr)
    return corral_s, virsh_s, network_s, spans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="moves per variant and mode")
    parser.add_argument("--modes", nargs="+", choices=("shared", "copied"),
                        default=["shared", "copied"])
    parser.add_argument("--layouts", nargs="+", choices=("alone", "spanning"),
                        default=["alone", "spanning"],
                        help="the guest alone on its switch, or the switch spanning both hosts")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N costliest functions of one more Corral move per "
                             "mode, after the timed ones (cProfile, cumulative time)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("migrate_vs_virsh: the fake hosts need root", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="corral-bench-migr-", dir="/var/tmp"))
    root.chmod(0o755)
    rows = []
    try:
        with interrupt_on_sigterm(), Harness(root) as harness:
            site = parse_site_config(harness.toml.read_text(), harness.toml)
            with Session(site) as session:
                build_template(session, "tiny")
            for layout in args.layouts:
                for mode in args.modes:
                    corral_s, virsh_s, network_s, spans = run_mode(
                        harness, mode, layout, args.repeat, args.profile)
                    best = corral_s.index(min(corral_s))
                    whole = min(m + n for m, n in zip(virsh_s, network_s, strict=True))
                    rows.append((f"{mode}, {layout}", min(corral_s), min(virsh_s), whole,
                                 spans[best]))
    except (RuntimeError, AssertionError) as error:
        print(f"migrate_vs_virsh: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"live migration of one tiny guest between two fake hosts, best of {args.repeat}; "
          "virsh: its migrate alone, and with the network moved too where Corral's move "
          "moves it (alone: net-define, net-start on the target, net-destroy, net-undefine on "
          "the source); the goal is on the second, the same work")
    print(f"{'storage, switch':<16} {'corral s':>9} {'virsh s':>8} {'+ net s':>8} "
          f"{'/ virsh':>8} {'/ + net':>8}  goal <= {GOAL}")
    for mode, corral, virsh, whole, _ in rows:
        verdict = "ok" if corral / whole <= GOAL else "missed"
        print(f"{mode:<16} {corral:>9.2f} {virsh:>8.2f} {whole:>8.2f} {corral / virsh:>8.2f} "
              f"{corral / whole:>8.2f}  {verdict}")
    print("\nthe best Corral move, broken down (s): its virDomainMigrate3 call, the retirement "
          "of the source's network, the rest")
    print(f"{'storage, switch':<16} {'migrate3':>9} {'retire':>7} {'rest':>6}  "
          f"{'migrate3 / virsh':>16}  {'without retire / virsh':>22}")
    for mode, corral, virsh, _, span in rows:
        call, retire = span.get("migrate3", 0.0), span.get("retire", 0.0)
        print(f"{mode:<16} {call:>9.2f} {retire:>7.2f} {corral - call - retire:>6.2f}  "
              f"{call / virsh:>16.2f}  {(corral - retire) / virsh:>22.2f}")
    print("\nits steps (s), in the order they begin; those after one '|' run at the same "
          "time as the one before it; other: what none of them covers")
    for mode, corral, _, _, span in rows:
        print(f"{mode:<16} " + "  ".join(
            " | ".join(f"{label} {sum(span.get(x, 0.0) for x in label.split('+')):.2f}"
                       for label in step) for step in STEPS)
              + f"  other {corral - sum(_longest(step, span) for step in STEPS):.2f}")
    return 0


def _longest(step: tuple[str, ...], span: dict[str, float]) -> float:
    """How long a step of STEPS took: its longest part (a ``a+b`` part is a then b)."""
    return max(sum(span.get(x, 0.0) for x in label.split("+")) for label in step)


if __name__ == "__main__":
    sys.exit(main())

"""Helpers the benchmarks share: a scratch directory QEMU can read, a site
config pointing into it, the tiny template registered there, and a sweep that
removes a benchmark project's libvirt objects by name.

Benchmarks on the real libvirtd must never touch what is not theirs: every
project they create has a fresh random name, and :func:`sweep` only removes
domains and networks whose names begin with ``PROJECT-`` and the pool
``corral-PROJECT``. The registered ``tiny`` template, if the machine has one,
is only read (its files are copied into the scratch registry).
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import libvirt

from corral.config import SiteConfig, parse_site_config
from corral.images.registry import TemplateRegistry
from corral.images.tiny_builder import build_tiny

SCRATCH_PARENT = Path("/var/tmp")
REGISTERED_TEMPLATES = Path("/var/lib/corral/templates")
CONSOLE_LOGS = Path("/var/log/libvirt/qemu")
SWEEP_WORKERS = 8
FAKE_HOSTS = Path(__file__).resolve().parent.parent / "scripts" / "fake-hosts"
FAKE_NETS = range(100, 240)  # second octets a harness may use (the tests' range)

# libvirt prints every error to stderr by default, even caught ones; the
# benchmarks report their own failures.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory under /var/tmp, mode 0755 so QEMU's user can reach
    run copies and templates inside it; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=SCRATCH_PARENT))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def site_config(root: Path, uri: str) -> SiteConfig:
    """A site config whose templates, state database and run copies live in ``root``,
    with the one service host ``local`` at ``uri``. Also written to
    ``root/corral.toml`` so the same setup can be tried with the CLI."""
    text = (
        "[paths]\n"
        f'templates = "{root / "templates"}"\n'
        f'state = "{root / "state.db"}"\n'
        f'runs = "{root / "runs"}"\n'
        "\n[service_hosts.local]\n"
        f'uri = "{uri}"\n'
    )
    path = root / "corral.toml"
    path.write_text(text)
    return parse_site_config(text, path)


def register_tiny(site: SiteConfig, work: Path, extra_cmdline: str = "") -> str:
    """Register the ``tiny`` template in the site's (scratch) registry; say where from.

    A copy of the machine's registered template when there is one (read,
    never written), else a fresh build from Debian packages. ``extra_cmdline``
    is appended to the copy's kernel command line.
    """
    registry = TemplateRegistry(site.paths.templates)
    if (REGISTERED_TEMPLATES / "tiny" / "manifest.json").is_file():
        source = TemplateRegistry(REGISTERED_TEMPLATES).get("tiny")
        registry.add(
            "tiny", source.disk, kernel=source.kernel, initrd=source.initrd,
            cmdline=_joined(source.cmdline, extra_cmdline),
        )
        origin = f"copied from {source.directory}"
    else:
        image = build_tiny(work / "tiny-build")
        registry.add(
            "tiny", image.disk, kernel=image.kernel, initrd=image.initrd,
            cmdline=_joined(image.cmdline, extra_cmdline), move=True,
        )
        origin = "built from Debian packages"
    return f"{origin}, kernel command line: {registry.get('tiny').cmdline}"


def _joined(cmdline: str | None, extra: str) -> str:
    """The template's command line plus the extra arguments it does not have yet."""
    words = (cmdline or "").split()
    return " ".join(words + [w for w in extra.split() if w not in words])


def project_name(prefix: str) -> str:
    """A project name no one else uses, so sweeping by name prefix is safe."""
    return f"{prefix}{secrets.token_hex(4)}"


def sweep(conn: libvirt.virConnect, project: str) -> list[str]:
    """Destroy and remove the domains, networks, pool (with its volumes and console
    logs) and QEMU logs of ``project``, found by name; returns what it removed."""
    prefix = f"{project}-"
    domains = [d for d in conn.listAllDomains(0) if d.name().startswith(prefix)]
    # Destroying a QEMU guest takes a second or two; do them side by side.
    with ThreadPoolExecutor(max_workers=SWEEP_WORKERS) as pool:
        removed = [f"domain {name}" for name in pool.map(_remove_domain, domains)]
    # QEMU's own logs stay behind after a domain is undefined (also by corral remove);
    # the serial console logs are in the project's pool and go with it.
    for log in CONSOLE_LOGS.glob(f"{project}-*.log"):
        with contextlib.suppress(OSError):
            log.unlink()
    for network in conn.listAllNetworks(0):
        name = network.name()
        if not name.startswith(prefix):
            continue
        if network.isActive():
            network.destroy()
        network.undefine()
        removed.append(f"network {name}")
    for pool in conn.listAllStoragePools(0):
        if pool.name() != f"corral-{project}":
            continue
        if not pool.isActive():
            with contextlib.suppress(libvirt.libvirtError):
                pool.create(0)
        if pool.isActive():
            pool.refresh(0)
            for volume in pool.listAllVolumes(0):
                volume.delete(0)
            pool.destroy()
        with contextlib.suppress(libvirt.libvirtError):
            pool.delete(0)
        pool.undefine()
        removed.append(f"pool {pool.name()}")
    return removed


def _remove_domain(domain: libvirt.virDomain) -> str:
    name = domain.name()
    with contextlib.suppress(libvirt.libvirtError):
        if domain.isActive():
            domain.destroy()
    flags = libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    try:
        domain.undefineFlags(flags | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    except libvirt.libvirtError:
        domain.undefineFlags(flags)
    return name


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, so ``finally`` blocks clean up either way."""

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def require_root_for(uri: str) -> str | None:
    """Why this process cannot use ``uri`` (qemu:///system wants root), or None."""
    if uri.endswith("/system") and os.geteuid() != 0:
        return f"{uri} needs root (the console logs and run copies are root's)"
    return None


@dataclass(frozen=True)
class FakeHarness:
    """A running ``scripts/fake-hosts`` harness of this benchmark's own."""

    state: Path  # CORRAL_FAKE_HOSTS_DIR
    net: int  # CORRAL_FAKE_HOSTS_NET: addresses 10.NET.*, links cfhNET-*
    toml: Path  # the site config it wrote (local + h1..hN)
    seconds: float  # how long `up` took

    @property
    def bridge(self) -> str:
        """The site bridge every fake host has (``switch x { bridge ... }``)."""
        return f"cfh{self.net}-site"


def _free_net() -> int:
    """A random second octet whose site bridge does not exist on this machine, so
    the harness never collides with another one running side by side."""
    nets = list(FAKE_NETS)
    random.shuffle(nets)
    for net in nets:
        if not Path(f"/sys/class/net/cfh{net}-site").exists():
            return net
    raise RuntimeError("no free fake-hosts network")


def _fake_hosts_script(state: Path, net: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRAL_FAKE_HOSTS_DIR": str(state),
           "CORRAL_FAKE_HOSTS_NET": str(net)}
    return subprocess.run([sys.executable, str(FAKE_HOSTS), *args], capture_output=True,
                          text=True, env=env, check=False, timeout=600)


@contextlib.contextmanager
def fake_hosts(root: Path, count: int) -> Iterator[FakeHarness]:
    """``count`` fake service hosts in ``root`` (mode 0755, QEMU reads below it),
    always taken down afterwards, also after Ctrl-C or a failure (``down`` only
    touches the harness of its own state directory and net)."""
    state, toml, net = root / "fake-hosts", root / "fake-hosts.toml", _free_net()
    began = time.monotonic()
    try:
        result = _fake_hosts_script(state, net, "up", str(count), str(toml))
        if result.returncode != 0:
            raise RuntimeError(f"fake-hosts up failed: {result.stderr.strip()}")
        yield FakeHarness(state, net, toml, time.monotonic() - began)
    finally:
        down = _fake_hosts_script(state, net, "down")
        if down.returncode != 0:
            print(f"fake-hosts down failed: {down.stderr.strip()}", file=sys.stderr)

"""Bringing scripts/fake-hosts up and down for tests, and running Corral against it.

Every harness a test run starts gets a random free ``CORRAL_FAKE_HOSTS_NET``
(its addresses are 10.NET.*, its links ``cfhNET-*``), so several harnesses,
from one test session or from test runs side by side, never collide.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral.config import parse_site_config

from .support import REPO, cli_env

SCRIPT = REPO / "scripts" / "fake-hosts"
NETS = range(100, 240)  # second octets the harnesses may use (not 249/250: projects' own)


@dataclass(frozen=True)
class FakeHosts:
    state: Path  # the harness's state directory
    toml: Path  # the site config it wrote
    uris: dict[str, str]  # service host name -> libvirt URI
    seconds: float  # how long `up` took
    net: int  # second octet of every address of this harness

    @property
    def link(self) -> str:
        return "cfh" if self.net == 250 else f"cfh{self.net}"

    @property
    def bridge(self) -> str:
        """The site bridge every fake host has, joined to this machine's."""
        return f"{self.link}-site"

    def site_address(self, index: int) -> str:
        """Fake host ``index`` on the site bridge."""
        return f"10.{self.net}.0.{index}"

    def record(self, name: str) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.state / name / "host.json").read_text())
        return data

    def script(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_script(self.state, self.net, *args, timeout=timeout)

    def corral(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The real CLI against this harness's site config, no terminal."""
        env = {**cli_env(), "PYTHONPATH": str(REPO)}
        return subprocess.run(
            [sys.executable, "-m", "corral", "--config", str(self.toml), *args],
            capture_output=True, text=True, timeout=timeout, env=env,
            stdin=subprocess.DEVNULL, check=False,
        )


def run_script(state: Path, net: int, *args: str,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRAL_FAKE_HOSTS_DIR": str(state),
           "CORRAL_FAKE_HOSTS_NET": str(net)}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=timeout, env=env, check=False)


def skip_unless_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("fake hosts need root (namespaces, links, mounts)")
    for tool in ("libvirtd", "virtlogd", "qemu-system-x86_64", "openssl", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def free_net() -> int:
    """A random second octet whose site bridge does not exist on this machine."""
    nets = list(NETS)
    random.shuffle(nets)
    for net in nets:
        if not Path(f"/sys/class/net/cfh{net}-site").exists():
            return net
    raise RuntimeError("no free fake-hosts network")


@contextlib.contextmanager
def fake_hosts_up(count: int) -> Iterator[FakeHosts]:
    """``count`` fake service hosts for the duration; always taken down after."""
    skip_unless_possible()
    scratch = Path(tempfile.mkdtemp(prefix="corral-fh-", dir="/var/tmp"))
    scratch.chmod(0o755)  # QEMU (libvirt-qemu) opens templates and run copies below
    state, toml, net = scratch / "state", scratch / "corral.toml", free_net()
    try:
        began = time.monotonic()
        result = run_script(state, net, "up", str(count), str(toml))
        seconds = time.monotonic() - began
        assert result.returncode == 0, result.stderr
        site = parse_site_config(toml.read_text(), toml)
        uris = {name: host.uri for name, host in site.service_hosts.items()}
        yield FakeHosts(state, toml, uris, seconds, net)
    finally:
        run_script(state, net, "down")
        shutil.rmtree(scratch, ignore_errors=True)

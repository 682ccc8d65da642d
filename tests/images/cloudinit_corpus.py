"""The seed corpus the cloud-init tests check, and the way to run Debian's cloud-init on it.

The corpus is every host of ``corpus/features.corral`` (one host per seed
feature: users and passwords, keys, owned files, packages, hard-quoted
runcmd, static + gateway + nameservers beside DHCP, several NICs, none, the
apache plugin) and of every example project in ``examples/`` (files that
other examples ``#include`` are loaded through them).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from corral.images.seed import SeedDocuments, seed_documents
from corral.model.load import load_project
from corral.model.project import Host

HERE = Path(__file__).parent
EXAMPLES = HERE.parents[1] / "examples"
FEATURES = HERE / "corpus" / "features.corral"
DRIVER = HERE / "cloudinit_driver.py"
SYSTEM_PYTHON = "/usr/bin/python3"
_INCLUDE = re.compile(r"^\s*#include\s+(\S+)", re.MULTILINE)


def cloud_init_missing() -> str | None:
    """Why Debian's cloud-init cannot be run here, or None."""
    if shutil.which("cloud-init") is None:
        return "cloud-init is not installed (make setup installs Debian's package)"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import cloudinit"], capture_output=True)
    if probe.returncode != 0:
        return f"{SYSTEM_PYTHON} cannot import cloudinit"
    return None


needs_cloud_init = pytest.mark.skipif(
    cloud_init_missing() is not None, reason=cloud_init_missing() or ""
)


@dataclass(frozen=True)
class Seed:
    """One host's seed, named ``FILE.HOST`` (italy.mln and italy.yaml are both project italy)."""

    name: str
    host: Host
    documents: SeedDocuments


def project_files() -> list[Path]:
    """features.corral and every example that is not only an include of another."""
    examples = sorted(
        p for p in EXAMPLES.iterdir() if p.suffix in (".mln", ".corral", ".yaml", ".yml")
    )
    included = {
        name
        for p in examples
        for name in _INCLUDE.findall(p.read_text(encoding="utf-8"))
    }
    return [FEATURES, *(p for p in examples if p.name not in included)]


def corpus() -> list[Seed]:
    seeds = []
    for path in project_files():
        project = load_project(path)
        for host in project.hosts.values():
            documents = seed_documents(host, project.name)
            seeds.append(Seed(f"{path.name}.{host.name}", host, documents))
    return seeds


def write_seeds(seeds: list[Seed], directory: Path) -> None:
    for seed in seeds:
        target = directory / seed.name
        target.mkdir(parents=True)
        for name, text in seed.documents.by_name().items():
            (target / name).write_text(text, encoding="utf-8")


def run_driver(directory: Path) -> dict[str, Any]:
    """cloud-init's schema check, renderers and runcmd script for every seed in ``directory``.

    cloud-init's v2 parser lists the machine's own interfaces by MAC; on a
    machine where libvirt adds and removes taps and bridges meanwhile, that
    listing can fail (ENODEV). The driver therefore runs in a network
    namespace of its own (``unshare -n``, only ``lo``) when it can.
    """
    command = [SYSTEM_PYTHON, str(DRIVER), str(directory)]
    unshare = shutil.which("unshare")
    if unshare is not None and subprocess.run([unshare, "-n", "true"]).returncode == 0:
        command = [unshare, "-n", *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)

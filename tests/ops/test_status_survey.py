"""``status`` reads each service host once: one survey, not observe plus stats."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

from corral.backends.libvirt.backend import LibvirtBackend
from corral.config import SiteConfig
from corral.ops import projects
from corral.ops.session import Session


class CountingBackend(LibvirtBackend):
    """The real libvirt backend, counting the reads ``status`` could make."""

    calls: Counter[str]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls = Counter()

    def observe(self, project=None):
        self.calls["observe"] += 1
        return super().observe(project)

    def domain_stats(self, project=None):
        self.calls["domain_stats"] += 1
        return super().domain_stats(project)

    def survey(self, project=None):
        self.calls["survey"] += 1
        return super().survey(project)


def test_status_surveys_each_service_host_once(
    site: SiteConfig, tmp_path: Path, lab_file
) -> None:
    opened: list[CountingBackend] = []

    def factory(name: str, uri: str, runs: Path) -> CountingBackend:
        opened.append(CountingBackend(name, uri, runs))
        return opened[-1]

    with Session(site, backend_factory=factory) as s:
        base = tmp_path / "base.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
        s.registry.add("base", base)
        projects.up(s, lab_file(), wait=False)
        (backend,) = opened
        backend.calls.clear()
        rows = projects.status(s, "lab")
        assert dict(backend.calls) == {"survey": 1}
        by_host = {r.host: r for r in rows}
        assert by_host["app"].addresses == ["10.9.1.20"]
        assert (by_host["web"].state, by_host["web"].memory_mib) == ("running", 128)

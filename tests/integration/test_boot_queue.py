"""Boot-storm control on the real local libvirtd: with ``boot_parallel = 2`` at most
two guests boot at once, the next starting when one is ready, and each guest's
readiness timeout counts from its own start."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.config import parse_site_config
from corral.ops import projects
from corral.ops.session import Session

from .support import Site, node_superclass, project_name, remove_project, write_project

pytestmark = pytest.mark.libvirt

BOOTING = ["a1", "a2", "a3", "a4"]


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one moment (one that ends as another starts does not count)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def test_two_at_a_time_each_timed_from_its_own_start(site: Site, tiny, tmp_path: Path) -> None:
    name = project_name()
    toml = tmp_path / "corral.toml"
    toml.write_text(
        site.toml.read_text()
        + '\n[service_hosts.local]\nuri = "qemu:///system"\nboot_parallel = 2\n'
    )
    config = parse_site_config(toml.read_text(), toml)
    # A generous timeout: the point is the order, and a busy machine boots slowly.
    hosts = "".join(f"host {h} {{\n    superclass node\n    wait console 600\n}}\n"
                    for h in BOOTING)
    # "zz" never answers a ping (it has no address): it times out, 6 s after its own start.
    text = (
        f"global {{ project {name} }}\n{node_superclass()}{hosts}"
        "host zz {\n    superclass node\n    wait ping 6\n}\n"
    )
    path = write_project(tmp_path / "queue.corral", text)
    try:
        with Session(config) as session:
            result = projects.up(session, path)
        seen = {r.host: r for r in result.readiness}
        assert set(seen) == {*BOOTING, "zz"}
        assert all(seen[h].ready for h in BOOTING), [(r.host, r.reason) for r in seen.values()]
        # Both figures are rounded to 0.1 s: a guest that starts as another ends may
        # appear to overlap it by 0.1 s.
        spans = [(r.started_s, r.started_s + r.seconds - 0.15) for r in seen.values()]
        assert _max_overlap(spans) == 2, spans

        late = seen["zz"]
        assert not late.ready
        assert late.reason == "not ready after 6 s: no address to reach"
        # It waited in the queue behind the others, then had its own 6 s.
        assert late.started_s > 0
        assert 6 <= late.seconds < 15, late  # its start call included, on a busy machine
        assert set(result.started) == {*BOOTING, "zz"}
    finally:
        remove_project(site, name)

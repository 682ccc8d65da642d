"""Two ``corral up`` processes on one project: the second waits for the first.

Both are the real program on the real libvirtd with the tiny template. The
project lock in the state database must serialise them: their entries in the
operation log do not overlap in time, the one that came second said whom it
waited for, and afterwards ``corral plan`` finds nothing to change.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from corral.state import StateStore

from .support import Site, cli_env, node_superclass, project_name, remove_project, write_project

pytestmark = pytest.mark.libvirt


def project_text(name: str, subnet: int) -> str:
    return f"""\
global {{
    project {name}
}}
{node_superclass("96M")}
switch lan {{
    address 10.240.{subnet}.1/24
}}
host one {{
    superclass node
    network eth0 {{
        switch lan
        address dhcp
    }}
}}
host two {{
    superclass node
    network eth0 {{
        switch lan
        address dhcp
    }}
}}
"""


def corral(site: Site, *args: str) -> list[str]:
    return [sys.executable, "-m", "corral", "--config", str(site.toml), *args]


def test_two_ups_of_one_project_do_not_interleave(
    site: Site, tiny, subnets, tmp_path: Path
) -> None:
    name = f"op{project_name()}"
    path = write_project(tmp_path / "twice.corral", project_text(name, subnets()))
    try:
        runs = [
            subprocess.Popen(
                corral(site, "up", str(path)), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=400) for run in runs]
        for run, (out, err) in zip(runs, outputs, strict=True):
            assert run.returncode == 0, out + err
        waited = [err for _, err in outputs if f"project '{name}' is locked by " in err]
        assert len(waited) == 1, [err for _, err in outputs]
        assert "corral up) since " in waited[0]

        with StateStore(site.config.paths.state) as store:
            ups = sorted(
                (e for e in store.operations(name) if e.action == "up"),
                key=lambda e: e.started_at,
            )
            assert store.lock_holder(name) is None
        assert [e.outcome for e in ups] == ["ok", "ok"], ups
        first, second = ups
        assert first.duration_s is not None
        first_end = first.started_at + timedelta(seconds=first.duration_s)
        assert second.started_at >= first_end - timedelta(milliseconds=10), (first, second)
        assert "+ host one: create" in first.detail and "nothing to change" in second.detail

        plan = subprocess.run(corral(site, "plan", str(path)), capture_output=True, text=True,
                              env=cli_env(), stdin=subprocess.DEVNULL, check=False)
        assert plan.returncode == 0, plan.stdout + plan.stderr
    finally:
        remove_project(site, name)

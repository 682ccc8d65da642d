"""Two projects side by side through the real ``corral`` CLI: ``remove`` takes only its own.

Both projects have one host on one switch. ``alpha`` is brought up with
``corral up`` while ``beta`` comes up through the operations layer at the same
time; ``corral status --json`` describes alpha; ``corral remove`` without
``--yes`` and without a terminal refuses; with ``--yes`` it removes alpha and
beta's domain (still the same running instance), network and volumes stay.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import libvirt
import pytest

from corral.ops import projects

from .support import (
    CORRAL,
    URI,
    Site,
    cli_env,
    expected_objects,
    libvirt_objects,
    node_superclass,
    project_name,
    remove_project,
    run_corral,
    write_project,
)

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
host solo {{
    superclass node
    network eth0 {{
        switch lan
        address 10.240.{subnet}.5
        netmask 255.255.255.0
    }}
}}
"""


def domain_id(name: str) -> int:
    """The running instance's id: it changes when a domain is restarted."""
    conn = libvirt.open(URI)
    try:
        domain = conn.lookupByName(name)
        assert domain.isActive(), f"{name} is not running"
        return domain.ID()
    finally:
        conn.close()


def test_remove_touches_only_its_own_project(site: Site, tiny, subnets, tmp_path: Path) -> None:
    alpha, beta = project_name(), project_name()
    while beta == alpha:
        beta = project_name()
    alpha_file = write_project(tmp_path / "alpha.corral", project_text(alpha, subnets()))
    beta_file = write_project(tmp_path / "beta.corral", project_text(beta, subnets()))
    try:
        cli_up = subprocess.Popen(
            [str(CORRAL), "--config", str(site.toml), "up", str(alpha_file)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=cli_env(),
        )
        with site.session() as session:
            beta_up = projects.up(session, beta_file)
        output = cli_up.communicate(timeout=240)[0]
        assert cli_up.returncode == 0, output
        assert beta_up.ok, [(o.domain, o.reason) for o in beta_up.readiness]

        shown = run_corral(site, "status", "-p", alpha, "--json")
        assert shown.returncode == 0, shown.stderr
        (row,) = json.loads(shown.stdout)["rows"]
        assert (row["project"], row["host"], row["state"]) == (alpha, "solo", "running")
        assert row["memory_mib"] == 96 and row["addresses"] and row["service_host"] == "local"

        for name in (alpha, beta):
            assert libvirt_objects(name) == expected_objects(name, ["solo"], ["lan"], tiny.template)
        beta_instance = domain_id(f"{beta}-solo")

        refused = run_corral(site, "remove", "-p", alpha)
        assert refused.returncode != 0, refused.stdout
        assert libvirt_objects(alpha) == expected_objects(alpha, ["solo"], ["lan"], tiny.template)

        removed = run_corral(site, "remove", "-p", alpha, "--yes")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert libvirt_objects(alpha).empty, libvirt_objects(alpha)

        assert libvirt_objects(beta) == expected_objects(beta, ["solo"], ["lan"], tiny.template)
        assert domain_id(f"{beta}-solo") == beta_instance
        with site.session() as session:
            (beta_row,) = projects.status(session, beta)
            assert beta_row.state == "running"
            assert projects.plan_source(session, beta_file).empty
    finally:
        remove_project(site, alpha)
        remove_project(site, beta)

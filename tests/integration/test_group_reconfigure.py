"""A group's memory changed and upgraded on the real libvirtd: both running tiny
members get it live (the balloon), neither is restarted, and a host outside
the group is left alone. Then a verb on the group pauses and resumes both."""

from __future__ import annotations

import pytest

from corral.ops import projects, vms

from .support import Site, node_superclass, project_name, remove_project, wait_for, write_project

pytestmark = pytest.mark.libvirt


def project_text(name: str, memory: str) -> str:
    return f"""\
global {{
    project {name}
}}
{node_superclass("96M")}
group pair {{
    members one two
    memory {memory}
    maxmem 256M
}}
host one {{ superclass node }}
host two {{ superclass node }}
"""


def test_a_group_memory_change_reaches_every_running_member_live(
    site: Site, tiny, tmp_path
) -> None:
    name = project_name()
    path = write_project(tmp_path / "pair.corral", project_text(name, "128M"))
    try:
        with site.session() as session:
            assert projects.up(session, path).ok

            def rows() -> dict[str, projects.StatusRow]:
                return {r.host: r for r in projects.status(session, name)}

            uptimes = {host: row.uptime_s for host, row in rows().items()}
            assert {row.state for row in rows().values()} == {"running"}
            write_project(path, project_text(name, "160M"))
            applied = projects.upgrade(session, path)
            changes = {a.target: [(c.field, c.old, c.new, c.applied.value) for c in a.changes]
                       for a in applied.actions}
            assert changes == {"one": [("memory_mib", 128, 160, "live")],
                               "two": [("memory_mib", 128, 160, "live")]}
            assert not applied.started
            # QEMU reports balloon changes at most once a second: status may lag.
            wait_for(lambda: {r.memory_mib for r in rows().values()} == {160}, 15,
                     "both members to show 160 MiB")
            for host, row in rows().items():
                assert row.state == "running" and row.uptime_s >= uptimes[host], host
            assert projects.plan_source(session, path).empty
            paused = vms.vm_action_each(session, [f"{name}.@pair"], "pause")
            assert sorted(d.target for d in paused.done) == [f"{name}.one", f"{name}.two"]
            assert {r.state for r in rows().values()} == {"paused"}
            vms.vm_action_each(session, [f"{name}.@pair"], "resume")
            assert {r.state for r in rows().values()} == {"running"}
    finally:
        remove_project(site, name)

"""Groups of VMs end to end on libvirt's test driver: a group setting changed and
upgraded reconfigures every member live; status and the vm verbs on a group
act on its members only."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.errors import InvalidRequest, NotFoundError
from corral.ops import projects, vms
from corral.ops.groups import expand_targets, status_of_group
from corral.ops.results import Applied
from corral.ops.status import status_report
from corral.plan import ActionKind

CLUSTER = """
global {{ project lab }}
superclass node {{
    template base
    qemu
    wait none
}}
group cluster {{
    members n1 n2
    memory {memory}
    maxmem 512M
    vcpus {vcpus}
    maxvcpus 4
}}
host n1 {{ superclass node }}
host n2 {{ superclass node }}
host solo {{ superclass node
    memory 128M }}
"""


@pytest.fixture
def cluster_file(tmp_path: Path):
    def write(memory: str = "128M", vcpus: int = 1) -> Path:
        path = tmp_path / "lab.corral"
        path.write_text(CLUSTER.format(memory=memory, vcpus=vcpus))
        return path

    return write


def _domains(session) -> dict[str, tuple[int, int]]:
    """Each domain's (memory MiB, vCPUs) as libvirt reports them."""
    conn = session.backend("local").conn
    found = {}
    for name in ("lab-n1", "lab-n2", "lab-solo"):
        _, _, memory_kib, vcpus, _ = conn.lookupByName(name).info()
        found[name] = (memory_kib // 1024, vcpus)
    return found


def test_a_changed_group_setting_updates_every_member_live(session, cluster_file) -> None:
    projects.up(session, cluster_file(), wait=False)
    path = cluster_file(memory="256M", vcpus=2)
    plan = projects.plan_source(session, path)
    updated = {a.target: {c.field: (c.old, c.new, c.live) for c in a.changes}
               for a in plan.actions}
    assert updated == {
        "n1": {"memory_mib": (128, 256, True), "vcpus": (1, 2, True)},
        "n2": {"memory_mib": (128, 256, True), "vcpus": (1, 2, True)},
    }
    assert {a.kind for a in plan.actions} == {ActionKind.UPDATE_HOST}
    result = projects.upgrade(session, path)
    applied = {(a.target, c.field): c.applied for a in result.actions for c in a.changes}
    assert set(applied.values()) == {Applied.LIVE}
    assert _domains(session) == {"lab-n1": (256, 2), "lab-n2": (256, 2), "lab-solo": (128, 1)}
    assert projects.plan_source(session, path).empty


def test_status_of_a_group_shows_its_members_only(session, cluster_file) -> None:
    projects.up(session, cluster_file(), wait=False)

    def read(project):
        return status_report(session, project)

    report = status_of_group(session, "lab", "cluster", read)
    assert [(r.project, r.host) for r in report.rows] == [("lab", "n1"), ("lab", "n2")]
    assert [h.vms for h in report.service_hosts] == [2]
    assert sorted(report.as_json()["rows"][0]) == sorted(
        status_report(session, "lab").as_json()["rows"][0])  # the row contract is kept
    with pytest.raises(NotFoundError) as unknown:
        status_of_group(session, "lab", "clutser", read)
    assert unknown.value.message == "project 'lab' has no group 'clutser'"
    assert "its groups: cluster" in (unknown.value.hint or "")
    with pytest.raises(NotFoundError) as no_project:
        status_of_group(session, "nolab", "cluster", read)
    assert no_project.value.message == "project 'nolab' not found"
    with pytest.raises(InvalidRequest, match="needs its project"):
        status_of_group(session, None, "cluster", read)


def test_vm_verbs_on_a_group_act_on_every_member(session, cluster_file) -> None:
    projects.up(session, cluster_file(), wait=False)
    assert expand_targets(session, ["lab.@cluster", "lab.solo", "lab.n1"]) == [
        "lab.n1", "lab.n2", "lab.solo"]
    paused = vms.vm_action_each(session, ["lab.@cluster"], "pause")
    assert sorted(d.target for d in paused.done) == ["lab.n1", "lab.n2"]
    assert not paused.partial
    states = {r.host: r.state for r in projects.status(session, "lab")}
    assert states == {"n1": "paused", "n2": "paused", "solo": "running"}
    vms.vm_action_each(session, ["lab.@cluster"], "resume")
    memory = vms.vm_set_memory_each(session, ["lab.@cluster"], "192M")
    assert sorted((d.target, d.outcome) for d in memory.done) == [
        ("lab.n1", "192 MiB"), ("lab.n2", "192 MiB")]
    vms.vm_set_vcpus_each(session, ["lab.@cluster"], 3)
    assert _domains(session) == {"lab-n1": (192, 3), "lab-n2": (192, 3), "lab-solo": (128, 1)}
    too_much = vms.vm_set_memory_each(session, ["lab.@cluster"], "1G")
    assert too_much.partial and not too_much.done
    assert all("above its maximum of 512 MiB" in f.reason for f in too_much.failed)
    shut = vms.vm_action_each(session, ["lab.@cluster"], "shutdown", timeout_s=0.1)
    assert sorted(d.target for d in shut.done) == ["lab.n1", "lab.n2"]
    states = {r.host: r.state for r in projects.status(session, "lab")}
    assert states == {"n1": "shutoff", "n2": "shutoff", "solo": "running"}


def test_a_group_target_is_refused_clearly_where_it_cannot_act(session, cluster_file) -> None:
    projects.up(session, cluster_file(), wait=False)
    with pytest.raises(NotFoundError, match="project 'lab' has no group 'nope'"):
        vms.vm_action_each(session, ["lab.@nope"], "reboot")
    with pytest.raises(InvalidRequest, match="names a group of VMs, and this acts on one VM"):
        vms.vm_action(session, "lab.@cluster", "reboot")
    with pytest.raises(InvalidRequest, match="names a group of VMs"):
        vms.vm_describe(session, "lab.@cluster")
    with pytest.raises(InvalidRequest, match="names no group"):
        vms.vm_action_each(session, ["lab.@"], "reboot")
    with pytest.raises(InvalidRequest, match="group invalid name"):
        vms.vm_action_each(session, ["lab.@no_such"], "reboot")


def test_stop_and_start_take_a_group_among_their_hosts(session, cluster_file) -> None:
    projects.up(session, cluster_file(), wait=False)
    stopped = projects.stop(session, "lab", ["@cluster"], timeout_s=0.1)
    assert sorted(h.host for h in stopped.hosts) == ["n1", "n2"]
    states = {r.host: r.state for r in projects.status(session, "lab")}
    assert states == {"n1": "shutoff", "n2": "shutoff", "solo": "running"}
    started = projects.start(session, "lab", ["n1", "@cluster"], wait=False)
    assert sorted(started.started) == ["n1", "n2"]
    with pytest.raises(NotFoundError, match="has no group 'nope'"):
        projects.start(session, "lab", ["@nope"], wait=False)

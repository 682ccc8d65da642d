"""The operations layer end to end on libvirt's test driver: plan, up, upgrade, remove."""

from __future__ import annotations

import json

import pytest

from corral.errors import ConflictError, NotFoundError, SourceErrors
from corral.ops import projects, templates, vms
from corral.ops.results import Applied
from corral.plan import ActionKind


def test_up_builds_starts_and_converges(session, lab_file):
    path = lab_file()
    first = projects.plan_source(session, path)
    assert [(a.kind, a.target) for a in first.actions] == [
        (ActionKind.CREATE_SWITCH, "back"),
        (ActionKind.CREATE_SWITCH, "front"),
        (ActionKind.CREATE_HOST, "app"),
        (ActionKind.CREATE_HOST, "web"),
    ]
    result = projects.up(session, path, wait=False)
    assert result.ok
    assert projects.plan_source(session, path).empty
    rows = {r.host: r for r in projects.status(session, "lab")}
    assert {h: r.state for h, r in rows.items()} == {"app": "running", "web": "running"}
    assert rows["app"].addresses == ["10.9.1.20"]
    assert rows["app"].memory_mib == 128
    again = projects.up(session, path, wait=False)
    assert again.plan.empty and not again.changed


def test_names_begin_with_the_project(session, lab_file):
    projects.up(session, lab_file(), wait=False)
    backend = session.backend("local")
    seen = backend.observe("lab")
    assert sorted(d.name for d in seen.domains) == ["lab-app", "lab-web"]
    assert sorted(n.name for n in seen.networks) == ["lab-back", "lab-front"]


def test_upgrade_changes_memory_live_and_adds_hosts(session, lab_file):
    projects.up(session, lab_file(), wait=False)
    extra = "host db {\n superclass node\n network eth0 { switch back }\n}\n"
    result = projects.upgrade(session, lab_file(memory="192M", extra=extra))
    by_target = {a.target: a for a in result.actions}
    (memory,) = [c for c in by_target["web"].changes if c.field == "memory_mib"]
    assert (memory.old, memory.new, memory.applied) == (128, 192, Applied.LIVE)
    assert by_target["db"].kind == "create-host"
    assert result.started == ("db",)
    data = result.as_json()
    assert json.loads(json.dumps(data)) == data
    assert data["operation"] == "upgrade" and data["started"] == ["db"]
    assert {"field": "memory_mib", "old": 128, "new": 192, "applied": "live"} in [
        c for a in data["actions"] for c in a["changes"]
    ]
    rows = {r.host: r for r in projects.status(session, "lab")}
    assert rows["web"].memory_mib == 192
    assert rows["db"].state == "running"


def test_rebuild_is_refused_without_recreate(session, lab_file, tmp_path):
    path = lab_file()
    projects.up(session, path, wait=False)
    other = tmp_path / "other.qcow2"
    import subprocess

    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(other), "64M"], check=True)
    session.registry.add("other", other)
    path.write_text(path.read_text().replace("template base", "template other"))
    with pytest.raises(ConflictError) as refused:
        projects.upgrade(session, path)
    assert "need a new disk" in refused.value.message
    assert "--recreate" in (refused.value.hint or "")
    result = projects.upgrade(session, path, recreate=True)
    assert ("recreate-host", "web") in [(a.kind, a.target) for a in result.actions]
    assert projects.plan_source(session, path).empty


def test_unregistered_template_is_reported_at_the_host(session, lab_file):
    path = lab_file(extra="host db {\n template nosuch\n network eth0 { switch back }\n}\n")
    with pytest.raises(SourceErrors) as errors:
        projects.up(session, path, wait=False)
    (diagnostic,) = errors.value.diagnostics
    assert diagnostic.span.file == str(path)
    assert "host db" in diagnostic.message and "nosuch" in diagnostic.message
    assert session.backend("local").observe("lab").domains == ()


def test_removed_host_is_removed_by_upgrade(session, lab_file):
    path = lab_file()
    projects.up(session, path, wait=False)
    text = path.read_text()
    start = text.index("host web")
    end = text.index("host app")
    path.write_text(text[:start] + text[end:])
    result = projects.upgrade(session, path)
    assert ("remove-host", "web") in [(a.kind, a.target) for a in result.actions]
    assert [d.host for d in session.backend("local").observe("lab").domains] == ["app"]


def test_stop_start_and_vm_operations(session, lab_file):
    projects.up(session, lab_file(), wait=False)
    (stopped,) = projects.stop(session, "lab", ["web"], timeout_s=0.1).hosts
    assert (stopped.host, stopped.domain) == ("web", "lab-web")
    states = {r.host: r.state for r in projects.status(session, "lab")}
    assert states == {"app": "running", "web": "shutoff"}
    projects.start(session, "lab", ["web"], wait=False)
    assert vms.vm_action(session, "lab.web", "pause").outcome == "paused"
    assert {r.host: r.state for r in projects.status(session, "lab")}["web"] == "paused"
    vms.vm_action(session, "lab.web", "resume")
    assert "<name>lab-web</name>" in vms.vm_describe(session, "lab.web")
    with pytest.raises(NotFoundError) as missing:
        vms.vm_action(session, "lab.nope", "reboot")
    assert "known VMs: lab.app, lab.web" in (missing.value.hint or "")
    with pytest.raises(NotFoundError):
        projects.start(session, "lab", ["nope"])


def test_absent_hosts_come_from_the_recorded_project(session, lab_file):
    projects.up(session, lab_file(), wait=False)
    session.backend("local").destroy("lab-web")
    session.backend("local").undefine("lab-web")
    states = {r.host: r.state for r in projects.status(session, "lab")}
    assert states == {"app": "running", "web": "absent"}


def test_template_in_use_cannot_be_removed(session, lab_file):
    projects.up(session, lab_file(), wait=False)
    with pytest.raises(ConflictError) as refused:
        templates.remove_template(session, "base")
    assert "lab.app" in refused.value.message


def test_remove_touches_only_its_project(session, lab_file, tmp_path):
    projects.up(session, lab_file(), wait=False)
    other = tmp_path / "solo.corral"
    other.write_text(
        "global { project solo }\nswitch s { }\n"
        "host one {\n template base\n qemu\n wait none\n network eth0 { switch s }\n}\n"
    )
    projects.up(session, other, wait=False)
    preview = projects.describe_removal(session, "lab")
    assert "lab-app" in preview.domains
    assert not [n for n in (*preview.domains, *preview.networks) if n.startswith("solo")]
    projects.remove(session, "lab")
    seen = session.backend("local").observe(None)
    assert {d.project for d in seen.domains} == {"solo"}
    assert {n.project for n in seen.networks} == {"solo"}
    assert {v.project for v in seen.volumes} == {"solo"}
    assert [p.name for p in projects.list_projects(session)] == ["solo"]
    with pytest.raises(NotFoundError):
        projects.describe_removal(session, "lab")


def test_changed_switch_is_redefined(session, lab_file):
    # The test driver cannot detach devices, so the guests are stopped here;
    # reconnecting running guests is covered on the real libvirtd.
    path = lab_file()
    projects.up(session, path, wait=False)
    projects.stop(session, "lab", timeout_s=0.1)
    text = path.read_text().replace("address 10.9.1.1/24", "address 10.9.1.1/25")
    path.write_text(text.replace("netmask 255.255.255.0", "netmask 255.255.255.128"))
    result = projects.upgrade(session, path)
    assert ("update-switch", "front") in [(a.kind, a.target) for a in result.actions]
    assert projects.plan_source(session, path).empty


def test_vm_operations_are_logged_under_a_hyphenated_project(session, tmp_path):
    path = tmp_path / "lab2.corral"
    path.write_text(
        "global { project my-lab }\nswitch s { }\n"
        "host web {\n template base\n qemu\n wait none\n network eth0 { switch s }\n}\n"
    )
    projects.up(session, path, wait=False)
    vms.vm_action(session, "my-lab.web", "pause")
    (entry,) = [op for op in session.store.operations("my-lab") if op.action == "pause"]
    assert entry.target == "my-lab.web"


def test_stop_and_remove_results_as_json(session, lab_file):
    projects.up(session, lab_file(), wait=False)
    stopped = projects.stop(session, "lab", ["web"], timeout_s=0.1).as_json()
    (host,) = stopped["hosts"]
    assert (stopped["operation"], stopped["project"]) == ("stop", "lab")
    assert host["host"] == "web" and host["domain"] == "lab-web"
    assert host["outcome"] in ("clean", "forced")
    removed = projects.remove(session, "lab").as_json()
    assert json.loads(json.dumps(removed)) == removed
    kinds = sorted((r["kind"], r["name"]) for r in removed["removed"])
    assert kinds == [("domain", "lab-app"), ("domain", "lab-web"),
                     ("network", "lab-back"), ("network", "lab-front")]
    assert all(r["service_host"] == "local" for r in removed["removed"])

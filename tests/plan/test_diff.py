"""The planner is pure: model + observed state in, ordered actions out."""

from corral.model import Host, Interface, Project, Switch
from corral.plan import ActionKind, ObservedHost, ObservedProject, ObservedSwitch, plan_project
from corral.plan.diff import seed_changed


def _host(name: str = "web", **kw) -> Host:
    nic = Interface(name="eth0", switch="lan", address="dhcp", mac="52:54:00:00:00:01")
    return Host(**{"name": name, "template": "tiny", "interfaces": (nic,), **kw})


def _project(*hosts: Host) -> Project:
    return Project(
        name="lab", hosts={h.name: h for h in hosts}, switches={"lan": Switch(name="lan")}
    )


def _seen(project: Project, **states: str) -> ObservedProject:
    hosts = {
        n: ObservedHost(n, h.model_hash(), states.get(n, "running"), "local", f"lab-{n}", h)
        for n, h in project.hosts.items()
    }
    switches = {
        n: ObservedSwitch(n, s.model_hash(), True, "local", f"lab-{n}", s)
        for n, s in project.switches.items()
    }
    return ObservedProject("lab", hosts, switches)


def test_fresh_project_creates_switches_before_hosts():
    plan = plan_project(_project(_host("a"), _host("b")), ObservedProject("lab"))
    kinds = [a.kind for a in plan.actions]
    assert kinds == [ActionKind.CREATE_SWITCH, ActionKind.CREATE_HOST, ActionKind.CREATE_HOST]
    assert [a.target for a in plan.actions] == ["lan", "a", "b"]


def test_unchanged_project_plans_nothing():
    project = _project(_host())
    plan = plan_project(project, _seen(project))
    assert plan.empty
    assert plan.describe() == "project lab: nothing to change"


def test_memory_within_maxmem_is_live():
    before = _project(_host(memory_mib=128, maxmem_mib=512))
    after = _project(_host(memory_mib=256, maxmem_mib=512))
    (action,) = plan_project(after, _seen(before)).actions
    assert action.kind is ActionKind.UPDATE_HOST
    (change,) = action.changes
    assert (change.field, change.old, change.new, change.live) == ("memory_mib", 128, 256, True)


def test_memory_without_maxmem_is_not_live():
    before = _project(_host(memory_mib=128))
    after = _project(_host(memory_mib=256))
    (action,) = plan_project(after, _seen(before)).actions
    assert action.changes[0].live is False


def test_template_change_needs_recreate():
    before = _project(_host(template="tiny"))
    after = _project(_host(template="debian"))
    (action,) = plan_project(after, _seen(before)).actions
    assert action.kind is ActionKind.RECREATE_HOST
    assert action.destructive
    assert "template: tiny -> debian" in action.describe()


def test_removed_host_and_switch_are_removed_last():
    before = _project(_host("a"), _host("b"))
    after = Project(name="lab", hosts={"a": _host("a")}, switches={})
    seen = _seen(before)
    plan = plan_project(after, seen)
    assert [(a.kind, a.target) for a in plan.actions] == [
        (ActionKind.REMOVE_HOST, "b"),
        (ActionKind.REMOVE_SWITCH, "lan"),
    ]


def test_added_nic_is_live_and_reseeds():
    before = _project(_host())
    nic2 = Interface(name="eth1", switch="lan", address="10.0.0.5", mac="52:54:00:00:00:02")
    after = _project(_host().model_copy(update={"interfaces": (*_host().interfaces, nic2)}))
    (action,) = plan_project(after, _seen(before)).actions
    assert [c.field for c in action.changes] == ["interface eth1"]
    assert action.changes[0].live
    assert seed_changed(action)


def test_secrets_are_not_printed():
    before = _project(_host(root_passwd="old-hash"))
    after = _project(_host(root_passwd="new-hash"))
    text = plan_project(after, _seen(before)).describe()
    assert "new-hash" not in text and "root_passwd" in text


def test_inactive_switch_is_started_and_orphan_disk_noted():
    project = _project(_host())
    seen = _seen(project)
    lan = seen.switches["lan"]
    seen = ObservedProject(
        "lab", {}, {"lan": ObservedSwitch("lan", lan.model_hash, False, "local", "lab-lan")},
        frozenset({"web"}),
    )
    plan = plan_project(project, seen)
    assert [a.kind for a in plan.actions] == [ActionKind.START_SWITCH, ActionKind.CREATE_HOST]
    assert "interrupted build" in plan.actions[1].reason


def test_removed_nic_names_the_mac_to_unplug():
    nic2 = Interface(name="eth1", switch="lan", address="dhcp", mac="52:54:00:00:00:02")
    before = _project(_host().model_copy(update={"interfaces": (*_host().interfaces, nic2)}))
    after = _project(_host())
    (action,) = plan_project(after, _seen(before)).actions
    (change,) = action.changes
    assert (change.field, change.old, change.new, change.live) == (
        "interface eth1", "lan 52:54:00:00:00:02", None, True,
    )


def _with_disks(project: Project, *sizes: tuple[str, int]) -> Project:
    from corral.model.project import Disk

    host = project.hosts["web"].model_copy(
        update={"disks": tuple(Disk(name=n, size_mib=s) for n, s in sizes)}
    )
    return _project(host)


def test_disks_are_plugged_unplugged_and_grown_live():
    before = _with_disks(_project(_host()), ("data", 1024), ("logs", 512))
    after = _with_disks(_project(_host()), ("data", 2048), ("extra", 64))
    (action,) = plan_project(after, _seen(before)).actions
    assert action.kind is ActionKind.UPDATE_HOST
    changes = {c.field: (c.old, c.new, c.live) for c in action.changes}
    assert changes == {
        "disk data": ("1024 MiB", "2048 MiB", True),
        "disk extra": (None, "64 MiB", True),
        "disk logs": ("512 MiB", None, True),
    }


def test_a_shrunk_disk_needs_a_rebuild():
    before = _with_disks(_project(_host()), ("data", 1024))
    after = _with_disks(_project(_host()), ("data", 512))
    (action,) = plan_project(after, _seen(before)).actions
    assert action.kind is ActionKind.RECREATE_HOST
    assert [c.field for c in action.changes] == ["disk data"]


def test_kept_disk_volumes_are_noted_and_pruned_only_when_asked():
    project = _project(_host())
    seen = _seen(project)
    seen = ObservedProject("lab", seen.hosts, seen.switches, data_disks={"web": frozenset({"old"})})
    plan = plan_project(project, seen)
    assert plan.empty
    assert plan.notes == (
        "disk old of host web is no longer in the file; its volume is kept "
        "(upgrade --prune deletes it)",
    )
    (prune,) = plan_project(project, seen, prune=True).actions
    assert (prune.kind, prune.target, prune.disk) == (ActionKind.PRUNE_DISK, "web", "old")
    assert prune.destructive


def test_kvm_to_qemu_is_a_redefinition_and_other_kinds_a_rebuild():
    from corral.model import Virt

    project = _project(_host(virt=Virt.KVM))
    (to_qemu,) = plan_project(_project(_host(virt=Virt.QEMU)), _seen(project)).actions
    assert to_qemu.kind is ActionKind.UPDATE_HOST
    (to_xen,) = plan_project(_project(_host(virt=Virt.XEN)), _seen(project)).actions
    assert to_xen.kind is ActionKind.RECREATE_HOST


def test_boot_autostart_and_hvm_do_not_rebuild():
    project = _project(_host())
    changed = _project(_host(boot=("network", "hd"), autostart=True, hvm=True))
    (action,) = plan_project(changed, _seen(project)).actions
    assert action.kind is ActionKind.UPDATE_HOST
    assert {c.field for c in action.changes} == {"boot", "autostart", "hvm"}


def test_service_host_alone_migrates_a_running_host_live():
    before = _project(_host(service_host="h1"))
    after = _project(_host(service_host="h2"))
    (action,) = plan_project(after, _seen(before)).actions
    assert action.kind is ActionKind.MIGRATE_HOST
    assert not action.destructive
    (change,) = action.changes
    assert (change.field, change.old, change.new, change.live) == ("service_host", "h1", "h2", True)
    assert "from service host local to h2" in action.describe()


def test_a_stopped_host_moves_cold():
    before = _project(_host(service_host="h1"))
    after = _project(_host(service_host="h2"))
    (action,) = plan_project(after, _seen(before, web="shutoff")).actions
    assert action.kind is ActionKind.MIGRATE_HOST
    assert action.changes[0].live is False


def test_other_changes_ride_along_with_a_move():
    before = _project(_host(service_host="h1", memory_mib=128, maxmem_mib=512))
    after = _project(_host(service_host="h2", memory_mib=256, maxmem_mib=512))
    (action,) = plan_project(after, _seen(before)).actions
    assert action.kind is ActionKind.MIGRATE_HOST
    assert [c.field for c in action.changes] == ["service_host", "memory_mib"]


def test_a_move_with_another_rebuild_field_needs_recreate():
    before = _project(_host(service_host="h1", template="tiny"))
    after = _project(_host(service_host="h2", template="debian"))
    (action,) = plan_project(after, _seen(before)).actions
    assert action.kind is ActionKind.RECREATE_HOST


def test_logical_volumes_do_not_move():
    before = _project(_host(service_host="h1", lvm=True, lvm_vg="vg0"))
    after = _project(_host(service_host="h2", lvm=True, lvm_vg="vg0"))
    (action,) = plan_project(after, _seen(before)).actions
    assert action.kind is ActionKind.RECREATE_HOST


def test_a_running_guest_moving_to_a_target_without_live_migration_needs_recreate():
    from corral.backends.base import Capabilities

    before = _project(_host(service_host="h1"))
    after = _project(_host(service_host="h2"))
    caps = {"h2": Capabilities(live_memory=True, live_vcpus=True, live_nics=True)}
    (action,) = plan_project(after, _seen(before), caps).actions
    assert action.kind is ActionKind.RECREATE_HOST
    assert [c.field for c in action.changes] == ["service_host"]
    assert "stop it first" in action.reason


def test_a_changed_uuid_rebuilds_the_host_and_an_unchanged_one_plans_nothing():
    """libvirt cannot redefine a domain under another UUID: a new domain is needed."""
    fixed = _host(uuid="bbdda922-8ee3-4ff8-874e-7c4e712dc4c7")
    seen = _seen(_project(fixed))
    assert plan_project(_project(fixed), seen).actions == ()
    other = _host(uuid="26d1876a-85fc-49a4-9a5b-929570e18bb6")
    (action,) = plan_project(_project(other), seen).actions
    assert action.kind is ActionKind.RECREATE_HOST
    assert [c.field for c in action.changes] == ["uuid"]
    (added,) = plan_project(_project(fixed), _seen(_project(_host()))).actions
    assert added.kind is ActionKind.RECREATE_HOST


def _disks_of(project: Project, *disks) -> Project:
    return _project(project.hosts["web"].model_copy(update={"disks": disks}))


def test_existing_images_are_attached_live_swapped_at_next_boot_and_never_pruned():
    from corral.model.project import Disk, DiskType

    image = Disk(name="root", path="/guests/a.img", type=DiskType.IMAGE)
    volume = Disk(name="data", size_mib=1024)
    before = _disks_of(_project(_host()), volume)
    after = _disks_of(_project(_host()), image, volume.model_copy(update={"path": None}))
    (added,) = plan_project(after, _seen(before)).actions
    assert {c.field: (c.old, c.new, c.live) for c in added.changes} == {
        "disk root": (None, "image /guests/a.img", True),
    }
    other = _disks_of(_project(_host()), image.model_copy(update={"path": "/guests/b.img"}))
    (swapped,) = plan_project(other, _seen(_disks_of(_project(_host()), image))).actions
    assert swapped.kind is ActionKind.UPDATE_HOST
    assert {c.field: (c.old, c.new, c.live) for c in swapped.changes} == {
        "disk root": ("image /guests/a.img", "image /guests/b.img", False),
    }
    # A volume replaced by an image of the same name: the volume is kept, noted, prunable.
    replaced = _disks_of(_project(_host()), Disk(name="data", path="/guests/a.img"))
    seen = _seen(before)
    seen = ObservedProject("lab", seen.hosts, seen.switches,
                           data_disks={"web": frozenset({"data"})})
    plan = plan_project(replaced, seen)
    assert [c.live for c in plan.actions[0].changes] == [False]
    assert plan.notes and "disk data of host web" in plan.notes[0]
    # An image in use is no volume of Corral's: nothing to prune.
    assert plan_project(after, _seen(after), prune=True).actions == ()


def test_a_new_disk_of_another_format_needs_a_rebuild():
    from corral.model.project import Disk, DiskType

    before = _disks_of(_project(_host()), Disk(name="data", size_mib=64))
    after = _disks_of(_project(_host()), Disk(name="data", size_mib=64, type=DiskType.RAW))
    (action,) = plan_project(after, _seen(before)).actions
    assert action.kind is ActionKind.RECREATE_HOST
    assert [(c.field, c.old, c.new) for c in action.changes] == [
        ("disk data", "64 MiB", "64 MiB raw")
    ]

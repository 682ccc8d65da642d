"""The planner: ``plan_project(model, observed) -> Plan``, a pure function.

Every host field falls in one class, which decides how a change is applied:

* live: ``memory_mib`` and ``vcpus`` (within ``maxmem``/``maxvcpus``), the
  set of NICs and the extra disks (added: hot-plugged; removed: unplugged,
  their volume kept; grown: resized in place) change on a running guest; an
  existing image file attached in place of another disk changes the
  definition, for the next boot (a shrunk disk, or a new one of another
  format, is a rebuild);
* seed: users, keys, files, packages, commands, addresses and name servers go
  into a new NoCloud seed that the guest reads at its next boot;
* config: the domain definition changes and takes effect at the next boot
  (virtualization kind kvm/qemu, boot order, firmware boot, autostart, ...);
* rebuild: what the run copy is made of or where it lives (template, root
  size, placement, storage), and the domain's identity (``uuid``: libvirt
  cannot redefine a domain under another UUID) needs a new run copy, which destroys the guest's
  disk; ``upgrade`` refuses these unless told ``--recreate``;
* move: ``service_host`` alone among the rebuild fields moves the guest with
  its disks (live migration of a running guest, a verified copy of a stopped
  one's volumes): a ``migrate-host`` action whose other changes are then
  applied on the new service host as an update would be.

A change of ``wait`` alone (how readiness is judged) plans an update with no
field changes: it only refreshes the host model recorded in libvirt.
Volumes of extra disks that no longer appear in the file are kept and noted;
``prune=True`` (``upgrade --prune``) plans their deletion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from corral.model import Host, Interface, Project, Switch
from corral.model.project import Disk, DiskType
from corral.plan.actions import Action, ActionKind, Change, Plan
from corral.plan.observed import ObservedHost, ObservedProject, ObservedSwitch
from corral.plan.spans import SwitchSpan, describe_places

if TYPE_CHECKING:
    from corral.backends.base import Capabilities

# The rebuild field that, changed alone, moves the host instead of rebuilding it.
MOVE_FIELD = "service_host"
REBUILD_FIELDS = (
    "uuid", "template", "size_mib", "free_space_mib", "service_host", "lvm", "lvm_vg", "filepath",
)
SEED_FIELDS = (
    "users", "root_passwd", "ssh_keys", "files", "packages", "runcmd", "nameservers",
)
CONFIG_FIELDS = (
    "virt", "maxmem_mib", "maxvcpus", "cpus", "vncdisplay", "vncpasswd", "boot", "hvm",
    "autostart",
)
# Definition fields libvirt applies at once rather than at the next boot.
_APPLIED_AT_ONCE = frozenset({"autostart"})
# Hypervisor kinds whose guests cannot simply be redefined into one another.
_SAME_DOMAIN_KINDS = frozenset({"kvm", "qemu"})
# Guest states a move keeps the guest running through (live migration).
_MOVES_LIVE = frozenset({"running", "paused"})
# Interface fields the guest learns from its seed rather than from the domain.
_SEED_INTERFACE_FIELDS = ("address", "netmask", "gateway")


def plan_project(
    model: Project,
    observed: ObservedProject,
    capabilities: Mapping[str, Capabilities] | None = None,
    *,
    prune: bool = False,
    spans: Mapping[str, SwitchSpan] | None = None,
) -> Plan:
    """Order: switches created/updated, hosts created/updated, hosts removed, switches removed.

    ``capabilities`` maps a service host to what it can do to a running
    guest; a change its host cannot make live is marked for the next boot.
    A service host missing from it is taken as able to do every live change.
    ``spans`` (:mod:`corral.plan.spans`) says where each switch's networks
    go; with it, a switch whose service hosts or site bridge change (one
    that becomes cross-host, or single-host again) is an update.
    Extra-disk volumes that no host of the file uses are noted, or with
    ``prune`` deleted after everything else.
    """
    actions: list[Action] = []
    actions += _switch_actions(model, observed, spans or {})
    actions += [_within(a, _capabilities_of(a.host, capabilities) if a.host else None)
                for a in _host_actions(model, observed)]
    actions += [
        Action(ActionKind.REMOVE_HOST, name, reason="not in the project file")
        for name in sorted((set(observed.hosts) | observed.orphan_disks) - set(model.hosts))
    ]
    actions += [
        Action(ActionKind.REMOVE_SWITCH, name, reason="not in the project file")
        for name in sorted(set(observed.switches) - set(model.switches))
    ]
    kept = _kept_disks(model, observed)
    notes: tuple[str, ...] = ()
    if prune:
        actions += [
            Action(ActionKind.PRUNE_DISK, host, disk=disk, reason="not in the project file")
            for host, disk in kept
        ]
    else:
        notes = tuple(
            f"disk {disk} of host {host} is no longer in the file; its volume is kept "
            "(upgrade --prune deletes it)"
            for host, disk in kept
        )
    return Plan(model.name, tuple(actions), notes)


def _kept_disks(model: Project, observed: ObservedProject) -> list[tuple[str, str]]:
    """Extra-disk volumes of hosts still in the file that the file no longer lists."""
    kept = []
    for host_name, disks in sorted(observed.data_disks.items()):
        host = model.hosts.get(host_name)
        if host is None:
            continue  # the whole host goes, volumes and all
        wanted = {d.name for d in host.disks if d.path is None}  # volumes Corral makes
        kept += [(host_name, disk) for disk in sorted(disks - wanted)]
    return kept


def _switch_actions(
    model: Project, observed: ObservedProject, spans: Mapping[str, SwitchSpan]
) -> list[Action]:
    actions = []
    for name, switch in sorted(model.switches.items()):
        span = spans.get(name)
        if span is not None:
            action = _spanned_switch_action(switch, span, observed.networks_of(name))
            if action is not None:
                actions.append(action)
            continue
        seen = observed.switches.get(name)
        if seen is None:
            actions.append(Action(ActionKind.CREATE_SWITCH, name, switch=switch))
        elif seen.model_hash != switch.model_hash():
            actions.append(_switch_update(switch, seen))
        elif not seen.active:
            actions.append(Action(ActionKind.START_SWITCH, name, switch=switch, reason="inactive"))
    return actions


def _spanned_switch_action(
    switch: Switch, span: SwitchSpan, seen: tuple[ObservedSwitch, ...]
) -> Action | None:
    """The one action for a switch whose networks belong on ``span``'s service
    hosts: created, updated (model, service hosts or site bridge changed),
    started, or nothing. A cross-host switch's reason says where it goes."""
    name = switch.name
    if not seen:
        reason = f"on {span.describe()}" if span.crosses else ""
        return Action(ActionKind.CREATE_SWITCH, name, switch=switch, reason=reason)
    had = {s.service_host: s.site_bridge for s in seen}
    stale = [s for s in seen if s.model_hash != switch.model_hash()]
    changes: list[Change] = []
    if stale:
        changes += _switch_update(switch, stale[0]).changes
    if describe_places(had) != span.describe():
        changes.append(Change("service_hosts", describe_places(had), span.describe()))
    kept = set(had) & set(span.places)
    restarted = bool(stale) or any(had[h] != span.places[h] for h in kept)
    if restarted or set(had) != set(span.places):
        reasons = []
        if restarted:
            reasons.append("network restarted; running guests are plugged into it again")
        if set(span.places) - set(had):
            reasons.append("networks added on " + ", ".join(sorted(set(span.places) - set(had))))
        if set(had) - set(span.places):
            reasons.append(
                "networks removed from " + ", ".join(sorted(set(had) - set(span.places)))
                + " (no VM there uses the switch)"
            )
        return Action(ActionKind.UPDATE_SWITCH, name, switch=switch, changes=tuple(changes),
                      reason="; ".join(reasons))
    if not all(s.active for s in seen):
        return Action(ActionKind.START_SWITCH, name, switch=switch, reason="inactive")
    return None


def _switch_update(switch: Switch, seen: ObservedSwitch) -> Action:
    changes: tuple[Change, ...] = ()
    if seen.model is not None:
        changes = tuple(
            Change(f, getattr(seen.model, f), getattr(switch, f))
            for f in ("mode", "address", "bridge", "dhcp")
            if getattr(seen.model, f) != getattr(switch, f)
        )
    return Action(
        ActionKind.UPDATE_SWITCH, switch.name, switch=switch, changes=changes,
        reason="network restarted; running guests are plugged into it again",
    )


def _host_actions(model: Project, observed: ObservedProject) -> list[Action]:
    actions = []
    for name, host in sorted(model.hosts.items()):
        seen = observed.hosts.get(name)
        if seen is None:
            reason = "disk kept from an interrupted build" if name in observed.orphan_disks else ""
            actions.append(Action(ActionKind.CREATE_HOST, name, host=host, reason=reason))
        elif seen.model_hash != host.model_hash():
            actions.append(_host_update(host, seen))
    return actions


def _host_update(host: Host, seen: ObservedHost) -> Action:
    if seen.model is None:
        return Action(
            ActionKind.UPDATE_HOST, host.name, host=host,
            reason="definition differs from the one recorded in libvirt",
        )
    old = seen.model
    rebuild = [Change(f, getattr(old, f), getattr(host, f)) for f in REBUILD_FIELDS
               if getattr(old, f) != getattr(host, f)]
    if {old.virt.value, host.virt.value} - _SAME_DOMAIN_KINDS and old.virt != host.virt:
        rebuild.append(Change("virt", old.virt.value, host.virt.value))
    rebuild += _shrunk_disks(old, host)
    moved = [c for c in rebuild if c.field == MOVE_FIELD]
    # Logical volumes live on one machine's volume group: they do not move.
    if rebuild and (rebuild != moved or old.lvm or host.lvm):
        return Action(
            ActionKind.RECREATE_HOST, host.name, host=host, changes=tuple(rebuild),
            reason="needs a new run copy; the guest's disk is lost",
        )
    changes = _live_changes(old, host)
    changes += [Change(f, _brief(f, getattr(old, f)), _brief(f, getattr(host, f)),
                       live=f in _APPLIED_AT_ONCE)
                for f in SEED_FIELDS + CONFIG_FIELDS if getattr(old, f) != getattr(host, f)]
    changes += _interface_changes(old.interfaces, host.interfaces)
    changes += _disk_changes(old, host)
    if moved:
        # A running (or paused) guest moves live; a stopped one is copied cold.
        moving = replace(moved[0], live=seen.state in _MOVES_LIVE)
        return Action(
            ActionKind.MIGRATE_HOST, host.name, host=host, changes=(moving, *changes),
            reason=f"from service host {seen.service_host} to {host.service_host}",
        )
    return Action(ActionKind.UPDATE_HOST, host.name, host=host, changes=tuple(changes))


def _disks(host: Host) -> dict[str, Disk]:
    return {d.name: d for d in host.disks}


def _disk_view(disk: Disk | None) -> str | None:
    """How a disk reads in a change: ``1024 MiB`` (qcow2), ``1024 MiB raw``, or
    ``image /srv/x.img`` for an existing file (apply reads a size's first word)."""
    if disk is None:
        return None
    if disk.path is not None:
        return f"{disk.type.value} {disk.path}"
    return f"{disk.size_mib} MiB" + (" raw" if disk.type is DiskType.RAW else "")


def _new_volumes(a: Disk, b: Disk) -> bool:
    """Both are volumes Corral makes, of one format: the volume is kept and resized."""
    return a.path is None and b.path is None and a.type == b.type


def _shrunk_disks(old: Host, new: Host) -> list[Change]:
    """A smaller extra disk, or one of another format (qcow2/raw), cannot be had
    without a new, empty volume: a rebuild."""
    before, after = _disks(old), _disks(new)
    changes = []
    for name in sorted(set(before) & set(after)):
        a, b = before[name], after[name]
        if a.path is not None or b.path is not None:
            continue
        if a.type != b.type or (b.size_mib or 0) < (a.size_mib or 0):
            changes.append(Change(f"disk {name}", _disk_view(a), _disk_view(b)))
    return changes


def _disk_changes(old: Host, new: Host) -> list[Change]:
    """Extra disks added (hot-plugged), removed (unplugged, a volume kept) or grown;
    an existing image attached instead of another disk, or instead of a volume
    (kept), is a change of the definition, for the next boot."""
    before, after = _disks(old), _disks(new)
    changes = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a == b:
            continue
        if a is None or b is None:
            changes.append(Change(f"disk {name}", _disk_view(a), _disk_view(b), live=True))
        elif _new_volumes(a, b):
            if (b.size_mib or 0) > (a.size_mib or 0):
                changes.append(Change(f"disk {name}", _disk_view(a), _disk_view(b), live=True))
        else:
            changes.append(Change(f"disk {name}", _disk_view(a), _disk_view(b)))
    return changes


def disk_changes(action: Action) -> list[Change]:
    """The extra-disk additions, removals and growths of an update."""
    return [c for c in action.changes if c.field.startswith("disk ")]


def _live_changes(old: Host, new: Host) -> list[Change]:
    changes = []
    if old.memory_mib != new.memory_mib:
        ceiling = new.maxmem_mib or new.memory_mib
        live = new.maxmem_mib == old.maxmem_mib and new.memory_mib <= ceiling and (
            old.maxmem_mib is not None
        )
        changes.append(Change("memory_mib", old.memory_mib, new.memory_mib, live=live))
    if old.vcpus != new.vcpus:
        live = new.maxvcpus == old.maxvcpus and old.maxvcpus is not None
        changes.append(Change("vcpus", old.vcpus, new.vcpus, live=live))
    return changes


def _capabilities_of(
    host: Host, capabilities: Mapping[str, Capabilities] | None
) -> Capabilities | None:
    """What ``host``'s service host can do to it while it runs (a container's
    driver's for an lxc host)."""
    found = (capabilities or {}).get(host.service_host or "")
    return found.of(host) if found is not None else None


def _within(action: Action, capabilities: Capabilities | None) -> Action:
    """``action`` with the live changes its service host cannot make live moved to
    the next boot: memory without a balloon, vCPUs without hotplug or above the
    host's maximum, NICs and disks without device hotplug."""
    if capabilities is None or action.kind not in (
        ActionKind.UPDATE_HOST, ActionKind.MIGRATE_HOST
    ):
        return action
    if action.kind is ActionKind.MIGRATE_HOST and not capabilities.migration and any(
        c.field == MOVE_FIELD and c.live for c in action.changes
    ):
        # A running guest cannot be carried there live: moving it means a new
        # run copy on the target, which --recreate must allow (stopping it
        # first makes the move a cold copy of its disks instead).
        return replace(
            action, kind=ActionKind.RECREATE_HOST,
            changes=tuple(c for c in action.changes if c.field == MOVE_FIELD),
            reason=f"{action.reason}: that service host takes no running guest live, "
            "so it needs a new run copy; the guest's disk is lost (stop it first to "
            "move its disks cold)",
        )
    changes = tuple(
        replace(c, live=False) if c.live and not _can_do_live(c, capabilities) else c
        for c in action.changes
    )
    return action if changes == action.changes else replace(action, changes=changes)


def _can_do_live(change: Change, capabilities: Capabilities) -> bool:
    if change.field == MOVE_FIELD:
        return capabilities.migration
    if change.field == "memory_mib":
        return capabilities.live_memory
    if change.field == "vcpus":
        ceiling = capabilities.max_vcpus
        return capabilities.live_vcpus and (ceiling is None or int(str(change.new)) <= ceiling)
    if change.field.startswith("interface "):
        return capabilities.live_nics
    if change.field.startswith("disk "):
        return capabilities.live_disks
    return True


def _interface_changes(old: tuple[Interface, ...], new: tuple[Interface, ...]) -> list[Change]:
    before = {i.name: i for i in old}
    after = {i.name: i for i in new}
    changes = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is None or b is None:  # added or removed: the name is in one of them
            old_nic = None if a is None else _nic(a)
            new_nic = None if b is None else _nic(b)
            changes.append(Change(f"interface {name}", old_nic, new_nic, live=True))
        elif (a.switch, a.bridge, a.mac) != (b.switch, b.bridge, b.mac):
            changes.append(Change(f"interface {name}", _nic(a), _nic(b), live=True))
        else:
            changes += [
                Change(f"interface {name} {f}", getattr(a, f), getattr(b, f))
                for f in _SEED_INTERFACE_FIELDS if getattr(a, f) != getattr(b, f)
            ]
    return changes


def _nic(interface: Interface) -> str:
    """``SWITCH MAC`` (``bridge B MAC`` on a host bridge): how a NIC change reads, and
    where apply finds the MAC to unplug (the last word)."""
    if interface.bridge:
        return f"bridge {interface.bridge} {interface.mac}"
    return f"{interface.switch or '-'} {interface.mac}"


_SECRET_FIELDS = ("root_passwd", "vncpasswd")


def _brief(field: str, value: object) -> object:
    """Secrets and long values shown as a count or a marker, not spelled out."""
    if field in _SECRET_FIELDS and value is not None:
        return "(secret)"
    if isinstance(value, dict):
        return tuple(sorted(value))
    if isinstance(value, tuple) and value and not isinstance(value[0], str):
        return f"{len(value)} item(s)"
    return value


def nic_changes(action: Action) -> list[Change]:
    """The NIC additions, removals and replacements of an update, for live attach/detach."""
    return [c for c in action.changes if c.field.startswith("interface ") and c.live]


def seed_changed(action: Action) -> bool:
    seed_fields = set(SEED_FIELDS)
    return any(
        c.field in seed_fields
        or (c.field.startswith("interface ") and c.field.split()[-1] in _SEED_INTERFACE_FIELDS)
        for c in action.changes
    ) or bool(nic_changes(action))

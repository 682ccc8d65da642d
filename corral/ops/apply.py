"""Carrying out a plan: the only code that changes libvirt for a project file.

Apply runs in two phases, like Ganeti's CheckPrereq/Exec: :func:`check` is
read-only and reports every problem at once (unregistered template, virt kind
this service host cannot run, unknown service host, a rebuild not allowed)
before :func:`execute` touches a single object. Each step of ``execute`` is
idempotent (run copies are found again, seeds replaced, domains redefined,
networks ensured), so a run killed at any point converges when rerun.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from corral.backends.base import (
    Backend,
    BootSpec,
    DiskSpec,
    DomainSpec,
    NicSpec,
    StoragePlace,
    TemplateLike,
)
from corral.errors import ConflictError, CorralError, Diagnostic, SourceErrors, Span
from corral.images.installers import installer_of_template
from corral.images.seed import build_seed, seed_documents
from corral.model import Host, Project, Switch, SwitchMode, Virt
from corral.ops.devices import device_problems, disk_specs
from corral.ops.observe import Sighting
from corral.ops.results import ActionResult, Failed
from corral.ops.session import Session
from corral.ops.switches import ensure_switches, retire_networks, switch_problems, switch_spans
from corral.ops.switches import static_leases as static_leases
from corral.plan import Action, ActionKind, Plan
from corral.plan.diff import disk_changes, nic_changes

HOST_BUILD_KINDS = (ActionKind.CREATE_HOST, ActionKind.RECREATE_HOST)
CHANGE_KINDS = (ActionKind.UPDATE_HOST, ActionKind.MIGRATE_HOST)
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Executed:
    """What execute did, action by action, the domains it built, and what failed
    with its service host (the rest was done)."""

    actions: tuple[ActionResult, ...]
    built: tuple[str, ...]
    failed: dict[str, Failed] = field(default_factory=dict)  # project host/switch -> why


def domain_name(project: str, host: str) -> str:
    return f"{project}-{host}"


def requested_virt(session: Session, host: Host) -> str:
    """The domain type to ask for: the site's choice for kvm/qemu hosts, else the host's kind."""
    if host.virt is Virt.QEMU:
        return "qemu"
    if host.virt is Virt.KVM:
        return session.site.defaults.virt_type
    return host.virt.value


def _span(host_or_switch: Host | Switch) -> Span:
    origin = host_or_switch.origin
    if origin is None:
        return Span("<project>", 1, 1)
    return Span(origin.file, origin.line, origin.column)


def template_of(
    session: Session, name: str, supplied: Mapping[str, TemplateLike] | None = None
) -> TemplateLike:
    """The template ``name``: one the operation supplies itself (an import's
    archive, for hosts whose flattened run copy needs no template file), else
    the registry's."""
    if supplied and name in supplied:
        return supplied[name]
    return session.registry.get(name)


def check(
    session: Session, project: Project, plan: Plan, *, recreate: bool,
    unreachable: Collection[str] = (), supplied: Mapping[str, TemplateLike] | None = None,
) -> None:
    """Every reason the plan cannot be applied, raised together; changes nothing.

    Hosts on an ``unreachable`` service host are not checked: they fail alone
    in :func:`execute`, and a rerun checks them. ``supplied`` templates need
    not be registered (:func:`template_of`)."""
    problems: list[Diagnostic] = []
    checked_groups: dict[tuple[str, str], str | None] = {}
    refused = [a for a in plan.of_kind(ActionKind.RECREATE_HOST)]
    if refused and not recreate:
        text = "\n".join(a.describe() for a in refused)
        raise ConflictError(
            f"these changes need a new disk, which destroys the guest's data:\n{text}",
            hint="rerun with --recreate to rebuild them",
        )
    for action in plan.actions:
        if action.kind not in (*HOST_BUILD_KINDS, *CHANGE_KINDS) or action.host is None:
            continue
        host = action.host
        if host.service_host in unreachable:
            continue
        try:
            backend = session.backend(host.placed_on)
        except CorralError as error:
            problems.append(Diagnostic(_span(host), f"host {host.name}: {error.message}"))
            continue
        if host.template is None:
            problems.append(Diagnostic(
                _span(host), f"host {host.name} has no template",
                "set `template NAME` or a default template in corral.toml",
            ))
        else:
            try:
                template = template_of(session, host.template, supplied)
                problems += _package_problems(host, template)
                problems += _template_kind_problems(host, template)
            except CorralError as error:
                problems.append(Diagnostic(
                    _span(host), f"host {host.name}: {error.message}", error.hint
                ))
        try:
            backend.resolve_virt_type(requested_virt(session, host))
        except CorralError as error:
            problems.append(Diagnostic(_span(host), f"host {host.name}: {error.message}"))
        problems += _storage_problems(backend, host, checked_groups)
        if host.template is not None:
            problems += [] if host.virt is Virt.LXC else _boot_problems(session, host, supplied)
    problems += switch_problems(session, project)
    problems += device_problems(session, project, plan, unreachable)
    if problems:
        raise SourceErrors(problems)


def _package_problems(host: Host, template: TemplateLike) -> list[Diagnostic]:
    """``packages`` for a template whose system's installer this site lacks,
    or spelled in a way that installer refuses, would do nothing: refused."""
    installer = installer_of_template(template.os)
    if not host.packages or installer is None:
        return []
    try:
        installer.require(f"installing packages on template {template.name} ({template.os})")
        installer.check(host.packages)
    except CorralError as error:
        return [Diagnostic(_span(host), f"host {host.name}: {error.message}", error.hint)]
    return []


def _template_kind_problems(host: Host, template: TemplateLike) -> list[Diagnostic]:
    """An ``lxc`` host runs a root filesystem template, and only it does."""
    container = host.virt is Virt.LXC
    if container == (template.kind == "rootfs"):
        return []
    if container:
        return [Diagnostic(
            _span(host), f"host {host.name}: template {template.name} is a disk image, and an "
            "lxc host needs a root filesystem template",
            "build one: corral template build debian --rootfs",
        )]
    return [Diagnostic(
        _span(host), f"host {host.name}: template {template.name} is a container's root "
        "filesystem, which a VM cannot boot", "add lxc to the host, or use a disk template",
    )]


def _storage_problems(
    backend: Backend, host: Host, checked: dict[tuple[str, str], str | None]
) -> list[Diagnostic]:
    """An ``lvm`` host needs a volume group that its service host has."""
    if not host.lvm:
        return []
    if host.lvm_vg is None:
        return [Diagnostic(
            _span(host), f"host {host.name}: lvm needs a volume group",
            "lvm_vg NAME in the host, or lvm_vg in corral.toml [defaults]",
        )]
    key = (backend.name, host.lvm_vg)
    if key not in checked:
        found: str | None = None
        try:
            groups = backend.volume_groups()
            if host.lvm_vg not in groups:
                found = ", ".join(groups) or "none"
        except CorralError as error:
            found = f"none that libvirt can list ({error.message})"
        checked[key] = found
    if checked[key] is None:
        return []
    return [Diagnostic(
        _span(host),
        f"host {host.name}: service host {backend.name} has no LVM volume group "
        f"'{host.lvm_vg}' (volume groups there: {checked[key]})",
    )]


def _boot_problems(
    session: Session, host: Host, supplied: Mapping[str, TemplateLike] | None = None
) -> list[Diagnostic]:
    """``hvm`` and ``boot`` must be able to change how the host boots."""
    try:
        template = template_of(session, host.template or "", supplied)
    except CorralError:
        return []  # reported above
    problems = []
    firmware = template.kind == "disk" or host.hvm
    if host.hvm and host.virt.value != "xen":
        if template.kind == "disk":
            problems.append(Diagnostic(
                _span(host), f"host {host.name}: hvm changes nothing: template "
                f"{template.name} boots from its disk through the firmware already",
                "drop hvm",
            ))
        elif not getattr(template, "disk_boots", False):
            problems.append(Diagnostic(
                _span(host), f"host {host.name}: hvm needs a template whose disk boots; "
                f"{template.name} boots its kernel directly",
                "register the template with --disk-boots if its disk has a boot loader",
            ))
    if host.boot and not firmware:
        problems.append(Diagnostic(
            _span(host), f"host {host.name}: boot order applies to firmware boot, and "
            f"template {template.name} boots its kernel directly",
            "drop boot, or use hvm with a template whose disk boots",
        ))
    if host.free_space_mib is not None and not template.virtual_size:
        problems.append(Diagnostic(
            _span(host), f"host {host.name}: free_space adds to the template's disk size, "
            f"and template {template.name} has no disk", "use size instead",
        ))
    return problems


def nics_for(
    host: Host, project: Project, networks: dict[tuple[str, str], str]
) -> tuple[NicSpec, ...]:
    nics = []
    for nic in host.interfaces:
        if nic.bridge:
            nics.append(NicSpec(nic.mac, bridge=nic.bridge, name=nic.name))
            continue
        if not nic.switch:
            nics.append(NicSpec(nic.mac, name=nic.name))  # QEMU's user-mode network
            continue
        switch = project.switches[nic.switch]
        if switch.mode is SwitchMode.BRIDGE and switch.bridge:
            nics.append(NicSpec(nic.mac, bridge=switch.bridge, name=nic.name))
        else:
            network = networks[(nic.switch, host.placed_on)]
            nics.append(NicSpec(nic.mac, network=network, name=nic.name))
    return tuple(nics)


def root_size_mib(host: Host, template_bytes: int | None) -> int | None:
    """The run copy's size: ``size``, or the template's size plus ``free_space``."""
    if host.free_space_mib is not None and template_bytes:
        return -(-template_bytes // MIB) + host.free_space_mib
    return host.size_mib


def boot_spec(host: Host, template: TemplateLike) -> BootSpec:
    """Direct kernel boot as the template says, or firmware boot from its disk for
    ``hvm`` hosts on a template whose disk boots too."""
    spec = BootSpec.from_template(template)
    if host.hvm and spec.kind == "direct" and getattr(template, "disk_boots", False):
        return BootSpec(template=spec.template, kind="disk")
    return spec


def build_host(
    session: Session, project: Project, host: Host, networks: dict[tuple[str, str], str],
    supplied: Mapping[str, TemplateLike] | None = None,
) -> str:
    """Run copy, extra disks, seed and domain definition for one host; the domain name."""
    backend = session.backend(host.placed_on)
    template = template_of(session, host.template or "", supplied)
    virt = backend.resolve_virt_type(requested_virt(session, host))
    if host.virt is Virt.LXC:
        return _build_container(backend, project, host, template, networks)
    place = StoragePlace.of(host)
    size = root_size_mib(host, template.virtual_size)
    disk = backend.create_run_copy(project.name, host.name, template, size, place)
    disks = disk_specs(backend, project.name, host)
    seed = backend.upload_seed(
        project.name, host.name, build_seed(host, project.name, template.packages), place
    )
    return backend.define_domain(DomainSpec(
        project=project.name,
        host=host,
        virt_type=virt,
        boot=boot_spec(host, template),
        disk_path=disk,
        seed_path=seed,
        nics=nics_for(host, project, networks),
        model_hash=host.model_hash(),
        service_host=host.placed_on,
        disk_format="raw" if place.volume_group else "qcow2",
        disk_block=place.volume_group is not None,
        disks=disks,
    ))


def _build_container(
    backend: Backend, project: Project, host: Host, template: TemplateLike,
    networks: dict[tuple[str, str], str],
) -> str:
    """An ``lxc`` host: its root tree from the template's root filesystem, its seed
    as a directory, and the container's domain."""
    root = backend.create_container_root(project.name, host.name, template)
    documents = seed_documents(host, project.name, template.packages).by_name()
    seed = backend.write_container_seed(project.name, host.name, documents)
    return backend.define_domain(DomainSpec(
        project=project.name,
        host=host,
        virt_type=Virt.LXC.value,
        boot=BootSpec(template=template.name, kind=template.kind),
        disk_path=root,
        seed_path=seed,
        nics=nics_for(host, project, networks),
        model_hash=host.model_hash(),
        service_host=host.placed_on,
    ))


def teardown_host(backend: Backend, project: str, host: str, domain: str | None) -> None:
    """Destroy and undefine the domain and delete its disks (explicit removal only):
    the volumes Corral made, never an existing image the host attached."""
    if domain:
        backend.destroy(domain)
        backend.undefine(domain)
    backend.delete_volumes(project, host)


def _live_updates(
    backend: Backend,
    domain: str,
    action: Action,
    nics: tuple[NicSpec, ...],
    disks: tuple[DiskSpec, ...],
) -> frozenset[str]:
    """Apply the plan's live changes to the running domain; the fields done live."""
    done: set[str] = set()
    by_mac = {n.mac: n for n in nics}
    for change in action.changes:
        if change.field == "memory_mib" and change.live:
            backend.set_memory(domain, int(str(change.new)), live=True, config=False)
            done.add(change.field)
        elif change.field == "vcpus" and change.live:
            backend.set_vcpus(domain, int(str(change.new)), live=True, config=False)
            done.add(change.field)
    for change in disk_changes(action):
        if not change.live:  # the service host cannot hotplug disks: next boot
            continue
        name = change.field.split()[-1]
        if change.new is None:
            backend.detach_disk(domain, name)
        elif change.old is None:
            spec = next(d for d in disks if d.serial == name)
            backend.attach_disk(domain, spec)
        done.add(change.field)  # grown: done by _grow_disks_live before the redefinition
    for change in nic_changes(action):
        if change.old is not None:
            old_mac = str(change.old).split()[-1]
            backend.detach_interface(domain, old_mac, live=True, config=False)
        if change.new is not None:
            new_mac = str(change.new).split()[-1]
            if new_mac in by_mac:
                backend.attach_interface(domain, by_mac[new_mac], live=True, config=False)
        done.add(change.field)
    return frozenset(done)


def _grow_disks_live(backend: Backend, domain: str, action: Action) -> None:
    """Grow extra disks through the running domain (QEMU holds the image open), so
    the guest sees the new size at once; a stopped domain's volume grows on build."""
    for change in disk_changes(action):
        if change.live and change.old is not None and change.new is not None:
            size = int(str(change.new).split()[0])
            backend.grow_disk(domain, change.field.split()[-1], size)


def update_host(
    session: Session,
    project: Project,
    action: Action,
    sighting: Sighting,
    networks: dict[tuple[str, str], str],
) -> ActionResult:
    """Redefine the host (and its seed); on a running guest, apply what can be done live."""
    host = action.host
    assert host is not None
    seen = sighting.domain(host.name)
    backend = session.backend(host.placed_on)
    running = seen is not None and seen.state == "running"
    if running:
        _grow_disks_live(backend, seen.domain if seen else "", action)
    domain = build_host(session, project, host, networks)
    live: frozenset[str] = frozenset()
    if running:
        disks = disk_specs(backend, project.name, host)
        live = _live_updates(
            backend, domain, action, nics_for(host, project, networks), disks
        )
    return ActionResult.of(action, live)


def execute(
    session: Session, project: Project, plan: Plan, sighting: Sighting,
    supplied: Mapping[str, TemplateLike] | None = None,
) -> Executed:
    """Apply the (checked) plan. Switches first, then hosts, removals last.

    Work is spread over the service hosts in parallel; a service host that did
    not answer the observation, or fails a step, fails only the hosts (and
    switches) placed there, each with its reason, and the rest is done."""
    failed: dict[str, Failed] = {}
    down = sighting.unreachable

    def fail(kind: str, name: str, service_host: str, reason: str) -> None:
        failed.setdefault(name, Failed(kind, name, service_host, reason))

    for host in project.hosts.values():
        if host.service_host in down:
            fail("host", host.name, host.service_host, down[host.service_host])
    done: dict[int, ActionResult] = {}
    broken: dict[tuple[str, str], str] = {}
    spans = switch_spans(session, project)
    networks = ensure_switches(session, project, spans, failed=broken, unreachable=down)
    for (switch, service_host), reason in sorted(broken.items()):
        for host in project.hosts.values():
            if host.service_host == service_host and any(
                nic.switch == switch for nic in host.interfaces
            ):
                fail("host", host.name, service_host, f"switch {switch}: {reason}")
    switch_failed = {switch for switch, _ in broken}
    switches = (ActionKind.CREATE_SWITCH, ActionKind.UPDATE_SWITCH, ActionKind.START_SWITCH)
    done.update({id(a): ActionResult.of(a) for a in plan.of_kind(*switches)
                 if a.target not in switch_failed})

    def where(action: Action) -> str | None:
        return action.host.service_host if action.host is not None else None

    def outcome(action: Action, answer: object) -> bool:
        """True when the action was done; else its host failed with the reason."""
        if isinstance(answer, CorralError):
            fail("host", action.target, where(action) or "", answer.message)
            return False
        return True

    def teardown_old(action: Action) -> None:
        seen = sighting.domain(action.target)
        if seen is not None:
            backend = session.backend(seen.service_host)
            teardown_host(backend, project.name, action.target, seen.domain)

    recreated = [a for a in plan.of_kind(ActionKind.RECREATE_HOST) if a.target not in failed]
    for action, torn in zip(recreated, session.each(teardown_old, recreated, where=where),
                            strict=True):
        outcome(action, torn)

    builds = [a for a in plan.of_kind(*HOST_BUILD_KINDS) if a.target not in failed]
    reporter = session.reporter
    built: list[str] = []
    with reporter.progress("building hosts", len(builds)) as bar:
        def build(action: Action) -> str:
            assert action.host is not None
            name = build_host(session, project, action.host, networks, supplied)
            bar.advance(f"built {name}")
            return name

        for action, name in zip(builds, session.each(build, builds, where=where),
                                strict=True):
            if outcome(action, name):
                built.append(str(name))
                done[id(action)] = ActionResult.of(action)

    from corral.ops.migrate import move_hosts  # built on this module

    moves = [a for a in plan.of_kind(ActionKind.MIGRATE_HOST)  # then updated on the target
             if a.target not in failed]
    try:
        moved = move_hosts(session, project, moves, sighting, networks) if moves else []
        done.update({id(a): r for a, r in zip(moves, moved, strict=True)})
    except CorralError as error:
        for action in moves:
            fail("host", action.target, where(action) or "", error.message)

    updates = [a for a in plan.of_kind(ActionKind.UPDATE_HOST) if a.target not in failed]
    results = session.each(
        lambda a: update_host(session, project, a, sighting, networks), updates, where=where
    )
    for action, result in zip(updates, results, strict=True):
        if outcome(action, result) and isinstance(result, ActionResult):
            done[id(action)] = result

    removals = plan.of_kind(ActionKind.REMOVE_HOST)

    def remove(action: Action) -> None:
        seen = sighting.domain(action.target)
        if seen is not None:
            teardown_host(session.backend(seen.service_host), project.name, action.target,
                          seen.domain)
        else:
            for name in sighting.raw:
                teardown_host(session.backend(name), project.name, action.target, None)

    def removal_host(action: Action) -> str | None:
        seen = sighting.domain(action.target)
        return seen.service_host if seen is not None else None

    for action, gone in zip(removals, session.each(remove, removals, where=removal_host),
                            strict=True):
        if isinstance(gone, CorralError):
            fail("host", action.target, removal_host(action) or "", gone.message)
        else:
            done[id(action)] = ActionResult.of(action)
    for action in plan.of_kind(ActionKind.PRUNE_DISK):
        holders = [h for h in _service_hosts_of(sighting, project, action.target)
                   if h not in down]
        def prune(holder: str, action: Action = action) -> None:
            session.backend(holder).delete_data_disk(
                project.name, action.target, action.disk or ""
            )

        pruned = session.each(prune, holders, where=lambda h: h)
        errors = [(h, e) for h, e in zip(holders, pruned, strict=True)
                  if isinstance(e, CorralError)]
        if errors:
            fail("host", action.target, errors[0][0], errors[0][1].message)
            continue
        done[id(action)] = ActionResult.of(action)
    for action in plan.of_kind(ActionKind.REMOVE_SWITCH):
        try:
            for network in _networks_of(sighting, action.target):
                service_host, name = network
                session.backend(service_host).remove_network(name)
        except CorralError as error:
            fail("switch", action.target, service_host, error.message)
            continue
        done[id(action)] = ActionResult.of(action)
    retire_networks(session, sighting, spans)
    return Executed(
        tuple(done[id(a)] for a in plan.actions if id(a) in done), tuple(built), failed
    )


def _networks_of(sighting: Sighting, switch: str) -> list[tuple[str, str]]:
    return [
        (service_host, n.name)
        for service_host, seen in sighting.raw.items()
        for n in seen.networks
        if n.switch == switch
    ]


def _service_hosts_of(sighting: Sighting, project: Project, host: str) -> list[str]:
    """Where a host's volumes are: every service host that holds any of them."""
    found = [
        name for name, seen in sighting.raw.items()
        if any(v.host == host for v in seen.volumes)
    ]
    if not found and host in project.hosts:
        found = [project.hosts[host].placed_on]
    return found

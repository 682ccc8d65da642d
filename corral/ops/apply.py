"""Carrying out a plan: the only code that changes libvirt for a project file.

Apply runs in two phases, like Ganeti's CheckPrereq/Exec: :func:`check` is
read-only and reports every problem at once (unregistered template, virt kind
this service host cannot run, unknown service host, a rebuild not allowed)
before :func:`execute` touches a single object. Each step of ``execute`` is
idempotent (run copies are found again, seeds replaced, domains redefined,
networks ensured), so a run killed at any point converges when rerun.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from corral.backends.base import (
    Backend,
    BootSpec,
    DomainSpec,
    NicSpec,
    StaticLease,
)
from corral.errors import ConflictError, CorralError, Diagnostic, SourceErrors, Span
from corral.images.seed import build_seed
from corral.model import Host, Project, Switch, SwitchMode, Virt
from corral.ops.observe import Sighting
from corral.ops.results import ActionResult
from corral.ops.session import Session
from corral.plan import Action, ActionKind, Plan
from corral.plan.diff import nic_changes

HOST_BUILD_KINDS = (ActionKind.CREATE_HOST, ActionKind.RECREATE_HOST)


@dataclass(frozen=True, slots=True)
class Executed:
    """What execute did, action by action, and the domains it built."""

    actions: tuple[ActionResult, ...]
    built: tuple[str, ...]


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


def check(session: Session, project: Project, plan: Plan, *, recreate: bool) -> None:
    """Every reason the plan cannot be applied, raised together; changes nothing."""
    problems: list[Diagnostic] = []
    refused = [a for a in plan.of_kind(ActionKind.RECREATE_HOST)]
    if refused and not recreate:
        text = "\n".join(a.describe() for a in refused)
        raise ConflictError(
            f"these changes need a new disk, which destroys the guest's data:\n{text}",
            hint="rerun with --recreate to rebuild them",
        )
    for action in plan.actions:
        if action.kind not in (*HOST_BUILD_KINDS, ActionKind.UPDATE_HOST) or action.host is None:
            continue
        host = action.host
        try:
            backend = session.backend(host.service_host)
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
                session.registry.get(host.template)
            except CorralError as error:
                problems.append(Diagnostic(
                    _span(host), f"host {host.name}: {error.message}", error.hint
                ))
        try:
            backend.resolve_virt_type(requested_virt(session, host))
        except CorralError as error:
            problems.append(Diagnostic(_span(host), f"host {host.name}: {error.message}"))
    if problems:
        raise SourceErrors(problems)


def switch_placement(project: Project, default: str) -> dict[str, set[str]]:
    """Service hosts each switch must exist on: where its hosts run, or where it
    says, or (a switch nobody uses yet) the site's default service host."""
    where: dict[str, set[str]] = defaultdict(set)
    for host in project.hosts.values():
        for nic in host.interfaces:
            if nic.switch:
                where[nic.switch].add(host.service_host)
    for name, switch in project.switches.items():
        if switch.service_host:
            where[name].add(switch.service_host)
        elif not where[name]:
            where[name].add(default)
    return where


def static_leases(project: Project, switch: str) -> list[StaticLease]:
    return [
        StaticLease(nic.mac, nic.address, host.name)
        for host in project.hosts.values()
        for nic in host.interfaces
        if nic.switch == switch and nic.is_static and nic.address
    ]


def ensure_switches(session: Session, project: Project) -> dict[tuple[str, str], str]:
    """Ensure every switch on every service host that needs it; (switch, host) -> network."""
    jobs = [
        (name, service_host)
        for name, hosts in sorted(
            switch_placement(project, session.site.defaults.service_host).items()
        )
        for service_host in sorted(hosts)
        if name in project.switches
    ]

    def ensure(job: tuple[str, str]) -> str:
        name, service_host = job
        return session.backend(service_host).ensure_network(
            project.name, project.switches[name], static_leases(project, name)
        )

    return dict(zip(jobs, session.parallel(ensure, jobs), strict=True))


def nics_for(host: Host, project: Project, networks: dict[tuple[str, str], str]) -> tuple:
    nics = []
    for nic in host.interfaces:
        if not nic.switch:
            continue
        switch = project.switches[nic.switch]
        if switch.mode is SwitchMode.BRIDGE and switch.bridge:
            nics.append(NicSpec(nic.mac, bridge=switch.bridge, name=nic.name))
        else:
            network = networks[(nic.switch, host.service_host)]
            nics.append(NicSpec(nic.mac, network=network, name=nic.name))
    return tuple(nics)


def build_host(
    session: Session, project: Project, host: Host, networks: dict[tuple[str, str], str]
) -> str:
    """Run copy, seed and domain definition for one host; returns the domain name."""
    backend = session.backend(host.service_host)
    template = session.registry.get(host.template or "")
    virt = backend.resolve_virt_type(requested_virt(session, host))
    disk = backend.create_run_copy(project.name, host.name, template, host.size_mib)
    seed = backend.upload_seed(project.name, host.name, build_seed(host, project.name))
    return backend.define_domain(DomainSpec(
        project=project.name,
        host=host,
        virt_type=virt,
        boot=BootSpec.from_template(template),
        disk_path=disk,
        seed_path=seed,
        nics=nics_for(host, project, networks),
        model_hash=host.model_hash(),
        service_host=host.service_host,
    ))


def teardown_host(backend: Backend, project: str, host: str, domain: str | None) -> None:
    """Destroy and undefine the domain and delete its disks (explicit removal only)."""
    if domain:
        backend.destroy(domain)
        backend.undefine(domain)
    backend.delete_volumes(project, host)


def _live_updates(
    backend: Backend, domain: str, action: Action, nics: tuple[NicSpec, ...]
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
    domain = build_host(session, project, host, networks)
    live: frozenset[str] = frozenset()
    backend = session.backend(host.service_host)
    if seen is not None and seen.state == "running":
        live = _live_updates(backend, domain, action, nics_for(host, project, networks))
    return ActionResult.of(action, live)


def execute(
    session: Session, project: Project, plan: Plan, sighting: Sighting
) -> Executed:
    """Apply the (checked) plan. Switches first, then hosts, removals last."""
    done: dict[int, ActionResult] = {}
    networks = ensure_switches(session, project)
    switches = (ActionKind.CREATE_SWITCH, ActionKind.UPDATE_SWITCH, ActionKind.START_SWITCH)
    done.update({id(a): ActionResult.of(a) for a in plan.of_kind(*switches)})

    for action in plan.of_kind(ActionKind.RECREATE_HOST):
        seen = sighting.domain(action.target)
        if seen is not None:
            backend = session.backend(seen.service_host)
            teardown_host(backend, project.name, action.target, seen.domain)

    builds = plan.of_kind(*HOST_BUILD_KINDS)
    reporter = session.reporter
    with reporter.progress("building hosts", len(builds)) as bar:
        def build(action: Action) -> str:
            assert action.host is not None
            name = build_host(session, project, action.host, networks)
            bar.advance(f"built {name}")
            return name

        built = session.parallel(build, builds)
    done.update({id(a): ActionResult.of(a) for a in builds})

    updates = plan.of_kind(ActionKind.UPDATE_HOST)
    results = session.parallel(
        lambda a: update_host(session, project, a, sighting, networks), updates
    )
    done.update({id(a): r for a, r in zip(updates, results, strict=True)})

    removals = plan.of_kind(ActionKind.REMOVE_HOST)

    def remove(action: Action) -> None:
        seen = sighting.domain(action.target)
        if seen is not None:
            teardown_host(session.backend(seen.service_host), project.name, action.target,
                          seen.domain)
        else:
            for name in session.service_host_names():
                teardown_host(session.backend(name), project.name, action.target, None)

    session.parallel(remove, removals)
    done.update({id(a): ActionResult.of(a) for a in removals})
    for action in plan.of_kind(ActionKind.REMOVE_SWITCH):
        for network in _networks_of(sighting, action.target):
            service_host, name = network
            session.backend(service_host).remove_network(name)
        done[id(action)] = ActionResult.of(action)
    return Executed(tuple(done[id(a)] for a in plan.actions if id(a) in done), tuple(built))


def _networks_of(sighting: Sighting, switch: str) -> list[tuple[str, str]]:
    return [
        (service_host, n.name)
        for service_host, seen in sighting.raw.items()
        for n in seen.networks
        if n.switch == switch
    ]

"""Project operations: what ``corral validate/show/plan/up/build/upgrade/start/stop/
remove/status/list/info`` do, callable from the CLI and the server alike."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from corral.backends.base import DomainState
from corral.config import SiteConfig
from corral.errors import NotFoundError, SourceErrors
from corral.model import Host, Project
from corral.ops import apply as applying
from corral.ops.observe import Sighting, observe_everywhere, sight
from corral.ops.readiness import Observation, Outcome, Target, reachable, wait_until_ready
from corral.ops.session import Session
from corral.plan import Plan, plan_project


# ---------------------------------------------------------------- files
def load_file(path: Path, site: SiteConfig) -> Project:
    from corral.model.load import load_project

    return load_project(path, site)


def validate_files(paths: list[Path], site: SiteConfig) -> list[tuple[Path, SourceErrors | None]]:
    """Every file checked; each with None (valid) or all of its positioned errors."""
    results: list[tuple[Path, SourceErrors | None]] = []
    for path in paths:
        try:
            load_file(path, site)
        except SourceErrors as errors:
            results.append((path, errors))
        else:
            results.append((path, None))
    return results


def plan_file(session: Session, path: Path) -> Plan:
    project = load_file(path, session.site)
    return plan_project(project, sight(session, project.name).project)


# ---------------------------------------------------------------- build / up / upgrade
@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    lines: tuple[str, ...]
    started: tuple[str, ...] = ()

    def describe(self) -> str:
        notes = [f"note: {n}" for n in self.plan.notes]
        if self.plan.empty and not self.started:
            return "\n".join([f"project {self.plan.project}: nothing to change", *notes])
        body = list(self.lines) + [f"started {name}" for name in self.started] + notes
        return f"project {self.plan.project}:\n" + "\n".join(body)


@dataclass(frozen=True)
class UpResult:
    applied: ApplyResult
    readiness: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.ready for o in self.readiness)


def _apply_file(
    session: Session, path: Path, *, recreate: bool, prune: bool = False
) -> tuple[Project, ApplyResult]:
    project = load_file(path, session.site)
    sighting = sight(session, project.name)
    plan = plan_project(project, sighting.project, prune=prune)
    applying.check(session, project, plan, recreate=recreate)
    store = session.store
    if store is not None:
        store.record_project(
            project.name, str(Path(path).resolve()),
            json.dumps(project.model_dump(mode="json")), _project_hash(project),
        )
    applied = applying.execute(session, project, plan, sighting)
    if store is not None:
        store.log_operation(project.name, "apply", str(path), "ok", plan.describe())
    return project, ApplyResult(plan, applied.lines)


def _project_hash(project: Project) -> str:
    digest = hashlib.sha256()
    for name in sorted(project.hosts):
        digest.update(project.hosts[name].model_hash().encode())
    for name in sorted(project.switches):
        digest.update(project.switches[name].model_hash().encode())
    return digest.hexdigest()[:16]


def build(session: Session, path: Path, *, recreate: bool = False) -> ApplyResult:
    """Create or update everything the file declares; start nothing."""
    _, result = _apply_file(session, path, recreate=recreate)
    return result


def up(session: Session, path: Path, *, recreate: bool = False, wait: bool = True) -> UpResult:
    """Build what is missing, apply changes, start every host, wait until each is ready."""
    project, result = _apply_file(session, path, recreate=recreate)
    outcomes = _start_hosts(session, project.name, list(project.hosts), wait=wait)
    return UpResult(result, outcomes)


def upgrade(
    session: Session, path: Path, *, recreate: bool = False, prune: bool = False
) -> ApplyResult:
    """Apply a changed file to a running project; new hosts are started as well.

    ``prune`` deletes the volumes of extra disks the file no longer lists.
    """
    project, result = _apply_file(session, path, recreate=recreate, prune=prune)
    fresh = [a.target for a in result.plan.of_kind(*applying.HOST_BUILD_KINDS)]
    started = _start_hosts(session, project.name, fresh, wait=False) if fresh else []
    return ApplyResult(result.plan, result.lines, tuple(o.target.domain for o in started))


# ---------------------------------------------------------------- start / stop
def _select(sighting: Sighting, project: str, hosts: list[str] | None) -> list:
    found = sighting.project.hosts
    if not found and not sighting.project.switches:
        raise NotFoundError(f"project '{project}' has nothing on any service host",
                            hint="build it first: corral up FILE")
    if hosts is None:
        return [found[name] for name in sorted(found)]
    missing = [h for h in hosts if h not in found]
    if missing:
        raise NotFoundError(
            f"project '{project}' has no host {', '.join(repr(m) for m in missing)}",
            hint="known hosts: " + (", ".join(sorted(found)) or "none"),
        )
    return [found[h] for h in hosts]


def _ensure_networks_active(session: Session, sighting: Sighting) -> None:
    hosts = {h.name: h.model for h in sighting.project.hosts.values() if h.model}
    project = Project(name=sighting.project.name, hosts=hosts, switches={})
    for service_host, seen in sighting.raw.items():
        for network in seen.networks:
            if not network.active and network.model is not None:
                session.backend(service_host).ensure_network(
                    sighting.project.name, network.model,
                    applying.static_leases(project, network.switch),
                )


def start(
    session: Session, project: str, hosts: list[str] | None = None, *, wait: bool = True
) -> list[Outcome]:
    """Start the project's networks and hosts (or the named ones), then wait for them."""
    sighting = sight(session, project)
    chosen = _select(sighting, project, hosts)
    _ensure_networks_active(session, sighting)
    return _start_hosts(session, project, [h.name for h in chosen], wait=wait, sighting=sighting)


def _start_hosts(
    session: Session,
    project: str,
    names: list[str],
    *,
    wait: bool,
    sighting: Sighting | None = None,
) -> list[Outcome]:
    sighting = sighting or sight(session, project)
    chosen = [sighting.project.hosts[n] for n in names if n in sighting.project.hosts]

    def boot(seen) -> None:
        backend = session.backend(seen.service_host)
        if seen.state == DomainState.PAUSED.value:
            backend.resume(seen.domain)
        elif seen.state != DomainState.RUNNING.value:
            backend.start(seen.domain)

    with session.reporter.progress("starting hosts", len(chosen)) as bar:
        def boot_one(seen) -> None:
            boot(seen)
            bar.advance(f"started {seen.domain}")

        session.parallel(boot_one, chosen)
    targets = [
        Target(seen.model or Host(name=seen.name), seen.domain) for seen in chosen
    ]
    service_of = {seen.domain: seen.service_host for seen in chosen}
    if not wait:
        return [Outcome(t, True, "not waited for", 0.0) for t in targets]
    session.reporter.note(f"waiting for {len(targets)} host(s) to be ready")
    networks = _networks_by_service_host(sighting)
    console_readable = {
        sh: session.backend(sh).capabilities().console_log for sh in set(service_of.values())
    }
    return wait_until_ready(
        targets,
        lambda pending: _observe_for_readiness(
            session, project, pending, service_of, networks, console_readable
        ),
        on_ready=lambda o: session.reporter.note(
            f"  {o.target.domain}: {'ready' if o.ready else 'NOT READY'} ({o.reason})"
        ),
    )


def _networks_by_service_host(sighting: Sighting) -> dict[str, list[str]]:
    return {sh: [n.name for n in seen.networks] for sh, seen in sighting.raw.items()}


def _observe_for_readiness(
    session: Session,
    project: str,
    pending: list[Target],
    service_of: dict[str, str],
    networks: dict[str, list[str]],
    console_readable: dict[str, bool],
) -> dict[str, Observation]:
    result: dict[str, Observation] = {}
    by_host: dict[str, list[Target]] = {}
    for target in pending:
        by_host.setdefault(service_of[target.domain], []).append(target)
    for service_host, targets in by_host.items():
        backend = session.backend(service_host)
        states = {name: state.value for name, state in backend.domain_states(project).items()}
        leases = backend.leases(networks.get(service_host, []))
        console_ok = console_readable[service_host]
        for target in targets:
            console = backend.console_output(target.domain) if console_ok else None
            probe = None
            if target.kind.value in ("ping", "ssh"):
                addresses = list(target.static_addresses)
                for mac in target.dhcp_macs:
                    addresses += leases.get(mac, [])
                probe = reachable(target.kind, addresses)
            result[target.domain] = Observation(
                states.get(target.domain, "unknown"), console, leases, probe
            )
    return result


def stop(
    session: Session, project: str, hosts: list[str] | None = None, *, timeout_s: float = 60
) -> list[str]:
    """ACPI shutdown of the chosen hosts in parallel, forced after ``timeout_s``."""
    chosen = _select(sight(session, project), project, hosts)

    def halt(seen) -> str:
        outcome = session.backend(seen.service_host).shutdown(seen.domain, timeout_s)
        return f"{seen.domain}: {outcome.value.replace('_', ' ')}"

    with session.reporter.progress("stopping hosts", len(chosen)):
        return session.parallel(halt, chosen)


# ---------------------------------------------------------------- remove
def describe_removal(session: Session, project: str) -> str:
    raw = observe_everywhere(session, project)
    domains = [d.name for seen in raw.values() for d in seen.domains]
    networks = [n.name for seen in raw.values() for n in seen.networks]
    volumes = [v.name for seen in raw.values() for v in seen.volumes]
    if not (domains or networks or volumes):
        raise NotFoundError(f"project '{project}' has nothing on any service host")
    return (
        f"project {project}: {len(domains)} domain(s) {', '.join(domains) or ''}; "
        f"{len(networks)} network(s) {', '.join(networks) or ''}; "
        f"{len(volumes)} volume(s) (disks are deleted)"
    )


def remove(session: Session, project: str) -> list[str]:
    """Destroy and delete the project's domains, disks, networks and pools; nothing else."""
    raw = observe_everywhere(session, project)
    lines: list[str] = []
    for service_host, seen in raw.items():
        backend = session.backend(service_host)
        session.parallel(
            lambda d, backend=backend: applying.teardown_host(backend, project, d.host, d.name),
            list(seen.domains),
        )
        lines += [f"- host {d.host}: removed ({d.name})" for d in seen.domains]
        for volume_host in sorted({v.host for v in seen.volumes} - {d.host for d in seen.domains}):
            backend.delete_volumes(project, volume_host)
            lines.append(f"- disks of {volume_host}: removed")
        for network in seen.networks:
            backend.remove_network(network.name)
            lines.append(f"- switch {network.switch}: removed ({network.name})")
        if seen.volumes or seen.domains:
            backend.remove_pool(project)
    store = session.store
    if store is not None:
        store.forget_project(project)
        store.log_operation(project, "remove", project, "ok", "\n".join(lines))
    return lines or [f"project {project}: nothing to remove"]


# ---------------------------------------------------------------- status / list / info
@dataclass(frozen=True)
class StatusRow:
    project: str
    host: str
    state: str
    addresses: list[str]
    service_host: str
    memory_mib: int | None
    vcpus: int | None
    uptime_s: float | None
    cpu_percent: float | None

    def as_json(self) -> dict:
        return asdict(self)


def status(session: Session, project: str | None = None) -> list[StatusRow]:
    """One row per host, from one bulk stats call per service host (plus leases)."""
    rows: list[StatusRow] = []
    raw = observe_everywhere(session, project)
    seen_hosts: set[tuple[str, str]] = set()
    for service_host, seen in raw.items():
        backend = session.backend(service_host)
        stats = {s.domain: s for s in backend.domain_stats(project)}
        leases = backend.leases([n.name for n in seen.networks if n.active])
        for domain in seen.domains:
            stat = stats.get(domain.name)
            rows.append(StatusRow(
                project=domain.project,
                host=domain.host,
                state=(stat.state if stat else domain.state).value,
                addresses=_addresses(domain.model, leases),
                service_host=service_host,
                memory_mib=stat.memory_mib if stat else None,
                vcpus=stat.vcpus if stat else None,
                uptime_s=stat.uptime_s if stat else None,
                cpu_percent=stat.cpu_percent if stat else None,
            ))
            seen_hosts.add((domain.project, domain.host))
    rows += _absent_rows(session, project, seen_hosts)
    return sorted(rows, key=lambda r: (r.project, r.host))


def _addresses(model: Host | None, leases: dict[str, list[str]]) -> list[str]:
    if model is None:
        return []
    found: list[str] = []
    for nic in model.interfaces:
        if nic.is_static and nic.address:
            found.append(nic.address)
        found += [ip for ip in leases.get(nic.mac, []) if ip not in found]
    return found


def _absent_rows(
    session: Session, project: str | None, seen: set[tuple[str, str]]
) -> list[StatusRow]:
    """Hosts the recorded project file defines that libvirt does not have."""
    store = session.store
    if store is None:
        return []
    records = [store.get_project(project)] if project else store.list_projects()
    rows = []
    for record in records:
        if record is None:
            continue
        model = Project.model_validate(json.loads(record.model_json))
        for host in model.hosts.values():
            if (model.name, host.name) not in seen:
                rows.append(StatusRow(
                    model.name, host.name, "absent", [], host.service_host, host.memory_mib,
                    host.vcpus, None, None,
                ))
    return rows


@dataclass(frozen=True)
class ProjectSummary:
    name: str
    hosts: int
    running: int
    switches: int
    service_hosts: list[str]
    source: str | None

    def as_json(self) -> dict:
        return asdict(self)


def list_projects(session: Session) -> list[ProjectSummary]:
    raw = observe_everywhere(session, None)
    names = set().union(*(seen.projects() for seen in raw.values())) if raw else set()
    store = session.store
    summaries = []
    for name in sorted(names):
        domains = [d for seen in raw.values() for d in seen.domains if d.project == name]
        networks = {n.switch for seen in raw.values() for n in seen.networks if n.project == name}
        where = sorted({sh for sh, seen in raw.items() if name in seen.projects()})
        record = store.get_project(name) if store else None
        summaries.append(ProjectSummary(
            name, len(domains), sum(d.state is DomainState.RUNNING for d in domains),
            len(networks), where, record.source_path if record else None,
        ))
    return summaries


def host_info(session: Session, service_host: str | None) -> dict[str, object]:
    name = service_host or session.site.defaults.service_host
    info = session.backend(name).host_info()
    return asdict(info)

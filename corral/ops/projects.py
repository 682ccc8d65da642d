"""Project operations: what ``corral validate/show/plan/up/build/upgrade/start/stop/
remove/status/list/info`` do, callable from the CLI and the server alike.

Each takes the project as a :class:`~corral.ops.source.ProjectSource` (text
and a name) or by name, and returns typed results (:mod:`corral.ops.results`);
nothing here prints. The changing operations (build, up, upgrade, remove)
hold the project's lock and every operation that changes something is
recorded in the operation log (:mod:`corral.ops.journal`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from corral.backends.base import (
    Capabilities,
    DomainState,
    Observed,
    ObservedDomain,
    TemplateLike,
)
from corral.config import SiteConfig
from corral.errors import (
    BackendError,
    CorralError,
    HiddenProject,
    InvalidRequest,
    NotFoundError,
    SourceErrors,
    Span,
)
from corral.model import Host, PlacedBy, Project
from corral.ops import apply as applying
from corral.ops import booting, switches
from corral.ops.access import Access, authorize
from corral.ops.clashes import refuse_site_clashes
from corral.ops.devices import device_problems
from corral.ops.groups import expand_hosts
from corral.ops.journal import project_lock, record_failure, recorded, recorded_project
from corral.ops.observe import Sighting, observe_each, observe_everywhere, sight
from corral.ops.placement import Placed, place_project
from corral.ops.quota import charged_user, check_quota
from corral.ops.readiness import Observation, Outcome, Target, reachable
from corral.ops.requests import check_name
from corral.ops.results import (
    ApplyResult,
    Failed,
    HostReadiness,
    HostStopped,
    RemovalPreview,
    Removed,
    RemoveResult,
    StopResult,
)
from corral.ops.session import Session
from corral.ops.source import ProjectSource, SourceLike, as_source
from corral.ops.status import DiskRow as DiskRow
from corral.ops.status import StatusRow as StatusRow
from corral.ops.status import status as status
from corral.plan import ObservedHost, ObservedProject, Plan, plan_project
from corral.state.accounts import Accounts
from corral.state.texts import ProjectText, ProjectTexts


# ---------------------------------------------------------------- sources
def load_source(source: SourceLike, site: SiteConfig) -> Project:
    """The resolved project of ``source``; every problem in one SourceErrors."""
    return as_source(source).load(site)


def validate_source(source: SourceLike, site: SiteConfig) -> SourceErrors | None:
    """None when the project is valid, else all of its positioned errors."""
    try:
        as_source(source).load(site)
    except SourceErrors as errors:
        return errors
    return None


def plan_source(session: Session, source: SourceLike) -> Plan:
    """What ``up``/``upgrade`` would change; reads libvirt, changes nothing."""
    project = as_source(source).load(session.site)
    sighting = sight(session, project.name)
    placed = place_project(session, project, sighting)
    plan = _plan(session, placed, sighting.project)
    problems = device_problems(session, placed.project, plan, sighting.unreachable)
    if problems:
        raise SourceErrors(problems)
    return plan


def _plan(
    session: Session, placed: Placed, observed: ObservedProject, *, prune: bool = False
) -> Plan:
    """The plan of a placed project (:mod:`corral.ops.placement`), saying where new
    hosts go. A UUID or MAC that another project of the site holds is refused first."""
    project = placed.project
    refuse_site_clashes(session, project)
    spans = switches.switch_spans(session, project, warn=True)
    return placed.annotate(plan_project(
        project, observed, capabilities_for(session, project, observed), prune=prune,
        spans=spans,
    ))


def capabilities_for(
    session: Session, project: Project, observed: ObservedProject
) -> Mapping[str, Capabilities]:
    """Capabilities of the service hosts where hosts of the project already run
    (only those can be changed live), asked of each host once per session."""
    wanted = {
        host.placed_on for name, host in project.hosts.items()
        if name in observed.hosts and host.placed_on in session.site.service_hosts
    }
    return {name: session.capabilities(name) for name in sorted(wanted)}


# ---------------------------------------------------------------- build / up / upgrade
def _apply(
    session: Session, source_like: SourceLike, operation: str, *, recreate: bool,
    wait_lock: bool, then_start: str, wait: bool = False, prune: bool = False,
    supplied: Mapping[str, TemplateLike] | None = None,
    prepare: Callable[[Project], object] | None = None,
) -> ApplyResult:
    """Load, lock, plan, check, record, execute; then start ``then_start`` hosts
    (``none``, ``new`` or ``all``). The lock is held until the guests are ready.
    ``prepare`` runs under the lock before libvirt is observed (an import writes
    its volumes there, which the plan then finds)."""
    mark = session.warning_mark()
    source = as_source(source_like)
    try:
        project = source.load(session.site)
    except SourceErrors as errors:
        record_failure(session, "", operation, source.origin, errors)
        raise
    if not session.identity.local:  # a user of the server: before the lock and libvirt
        authorize(session, session.identity, project.name, Access.WRITE, creating=True)
    with (
        project_lock(session, project.name, operation, wait=wait_lock, target=source.origin),
        recorded(session, project.name, operation, source.origin) as entry,
    ):
        if prepare is not None:
            prepare(project)
        sighting = sight(session, project.name)
        placed = _place(session, project, sighting)
        project = placed.project
        _warn_idle(session, project, sighting.unreachable)
        plan = _plan(session, placed, sighting.project, prune=prune)
        applying.check(session, project, plan, recreate=recreate,
                       unreachable=sighting.unreachable, supplied=supplied)
        entry.detail = plan.describe()
        if not session.identity.local:
            _admit(session, project, sighting)
        _record_project(session, project, source)
        executed = applying.execute(session, project, plan, sighting, supplied)
        failed = dict(executed.failed)
        names: list[str] = []
        if then_start == "all":
            names = list(project.hosts)
        elif then_start == "new":
            names = [a.target for a in plan.of_kind(*applying.HOST_BUILD_KINDS)]
        started, readiness = _start_hosts(
            session, project.name, [n for n in names if n not in failed], wait=wait,
            failed=failed,
        )
        if failed:
            entry.detail += "\npartly done; failed:\n" + "\n".join(
                f.describe() for f in failed.values()
            )
    return ApplyResult(
        operation, project.name, plan, executed.actions, started, readiness,
        session.warnings_since(mark), tuple(failed.values()),
    )


def _warn_idle(session: Session, project: Project, unreachable: Mapping[str, str]) -> None:
    """A service host that did not answer but holds none of the project's hosts or
    switches is only a warning: nothing of this project waits for it."""
    used = {h.service_host for h in project.hosts.values()}
    used |= {s.service_host for s in project.switches.values() if s.service_host}
    for name, reason in sorted(unreachable.items()):
        if name not in used:
            session.warn(f"service host {name} did not answer ({reason}); "
                         f"project {project.name} has nothing there")


def _recorded_model(session: Session, project: str) -> Project | None:
    """The project as its last ``up``/``build``/``upgrade`` recorded it, if known."""
    record = recorded_project(session, project)
    return Project.model_validate(json.loads(record.model_json)) if record else None


def unreachable_failures(
    session: Session, project: str, unreachable: Mapping[str, str],
    hosts: list[str] | None = None,
) -> list[Failed]:
    """What service hosts that did not answer keep from being done: each of the
    project's hosts (or of ``hosts``) recorded there, named with the reason. A
    host with none of them is a warning; without a record every such service
    host fails as a whole, since what it holds is unknown."""
    if not unreachable:
        return []
    model = _recorded_model(session, project)
    failures: list[Failed] = []
    for name, reason in sorted(unreachable.items()):
        if model is None:
            failures.append(Failed("service-host", name, name, reason))
            continue
        there = [h for h in model.hosts.values()
                 if h.service_host == name and (hosts is None or h.name in hosts)]
        failures += [Failed("host", h.name, name, reason) for h in there]
        if not there:
            session.warn(f"service host {name} did not answer ({reason}); "
                         f"project {project} has nothing there")
    return failures


def _admit(session: Session, project: Project, sighting: Sighting) -> None:
    """A user of the server creates a project under a free name only when libvirt has
    nothing of that name either (a project the database lost is an administrator's
    to claim), and changes one only within their quota."""
    identity = session.identity
    store = session.require_store()
    seen = sighting.project
    if (not identity.admin and Accounts(store).owner(project.name) is None
            and store.get_project(project.name) is None
            and (seen.hosts or seen.switches or seen.orphan_disks)):
        raise HiddenProject(project.name, f"project '{project.name}' exists on the service "
                                          "hosts but not in the state database")
    check_quota(session, charged_user(session, identity.name, project.name), project)


def _record_project(session: Session, project: Project, source: ProjectSource) -> None:
    """Remember the file (for ``status``'s absent hosts) and, for a user of the
    server, make them its owner if it has none; before any libvirt change."""
    store = session.store
    if store is None:
        return
    try:
        store.record_project(
            project.name, source.origin, json.dumps(project.model_dump(mode="json")),
            _project_hash(project),
        )
        texts = ProjectTexts(store)
        if source.path is None:  # sent as text: the database is the only place it lives
            texts.save(project.name, source.name, source.text, session.identity.name)
        else:  # applied from a file again: that file is the project's from now on
            texts.forget(project.name)
        if not session.identity.local:
            Accounts(store).claim_project(project.name, session.identity.name)
    except CorralError as error:  # a database fault is only a warning
        session.warn(f"project {project.name} not recorded in the state database: {error}")


def _project_hash(project: Project) -> str:
    digest = hashlib.sha256()
    for name in sorted(project.hosts):
        digest.update(project.hosts[name].model_hash().encode())
    for name in sorted(project.switches):
        digest.update(project.switches[name].model_hash().encode())
    return digest.hexdigest()[:16]


def build(
    session: Session, source: SourceLike, *, recreate: bool = False, wait_lock: bool = True,
    supplied: Mapping[str, TemplateLike] | None = None, operation: str = "build",
    prepare: Callable[[Project], object] | None = None,
) -> ApplyResult:
    """Create or update everything the project declares; start nothing.

    ``supplied`` templates need not be registered (an import's flattened hosts,
    see :func:`corral.ops.apply.template_of`); ``prepare`` runs under the lock
    first; ``operation`` names the run in the operation log."""
    return _apply(session, source, operation, recreate=recreate, wait_lock=wait_lock,
                  then_start="none", supplied=supplied, prepare=prepare)


def _place(session: Session, project: Project, sighting: Sighting) -> Placed:
    """The project placed on service hosts; a host recorded on a service host that
    does not answer now stays there (see :func:`place_project`)."""
    last = _recorded_model(session, project.name) if sighting.unreachable else None
    return place_project(session, project, sighting, {
        h.name: h.service_host for h in last.hosts.values()} if last else None)


def place_ahead(session: Session, source: SourceLike) -> None:
    """Place the project's new hosts now, for the session's later ``up`` of it to
    keep (see :mod:`corral.ops.pending`): what :func:`up_many` does for each
    project in turn, before bringing them all up at once. A project with no
    host for the scheduler costs nothing; one that cannot be loaded, seen or
    placed is left for its ``up`` to report."""
    try:
        project = as_source(source).load(session.site)
        if not any(h.placed_by is not PlacedBy.FILE and h.service_host is None
                   for h in project.hosts.values()):
            return
        if not session.identity.local:
            authorize(session, session.identity, project.name, Access.WRITE, creating=True)
        _place(session, project, sight(session, project.name))
    except CorralError:
        return


def up(
    session: Session, source: SourceLike, *, recreate: bool = False, wait: bool = True,
    wait_lock: bool = True,
) -> ApplyResult:
    """Build what is missing, apply changes, start every host, wait until each is ready."""
    return _apply(session, source, "up", recreate=recreate, wait_lock=wait_lock,
                  then_start="all", wait=wait)


def upgrade(
    session: Session, source: SourceLike, *, recreate: bool = False, prune: bool = False,
    wait_lock: bool = True,
) -> ApplyResult:
    """Apply a changed project to a running one; new hosts are started as well.

    ``prune`` deletes the volumes of extra disks the file no longer lists.
    """
    return _apply(session, source, "upgrade", recreate=recreate, wait_lock=wait_lock,
                  then_start="new", prune=prune)


# ---------------------------------------------------------------- start / stop
def _select(
    sighting: Sighting, project: str, hosts: list[str] | None, failed: Sequence[Failed] = ()
) -> list[ObservedHost]:
    """The observed hosts to act on; those in ``failed`` (on a service host that did
    not answer) are neither acted on nor missing."""
    found = sighting.project.hosts
    if not found and not sighting.project.switches and not failed:
        raise NotFoundError(f"project '{project}' has nothing on any service host",
                            hint="build it first: corral up FILE")
    if hosts is None:
        return [found[name] for name in sorted(found)]
    away = {f.name for f in failed if f.kind == "host"}
    if any(f.kind == "service-host" for f in failed):
        away |= set(hosts) - set(found)
    missing = [h for h in hosts if h not in found and h not in away]
    if missing:
        raise NotFoundError(
            f"project '{project}' has no host {', '.join(repr(m) for m in missing)}",
            hint="known hosts: " + (", ".join(sorted(found)) or "none"),
        )
    return [found[h] for h in hosts if h in found]


def ensure_networks_active(session: Session, sighting: Sighting) -> None:
    hosts = {h.name: h.model for h in sighting.project.hosts.values() if h.model}
    project = Project(name=sighting.project.name, hosts=hosts, switches={})
    for service_host, seen in sighting.raw.items():
        for network in seen.networks:
            if not network.active and network.model is not None:
                session.backend(service_host).ensure_network(
                    sighting.project.name, network.model,
                    applying.static_leases(project, network.switch),
                    site_bridge=network.site_bridge,
                )


def start(
    session: Session, project: str, hosts: list[str] | None = None, *, wait: bool = True
) -> ApplyResult:
    """Start the project's networks and hosts (or the named ones, ``@GROUP`` naming
    a group's members), then wait for them."""
    check_name("project", project)
    hosts = expand_hosts(session, project, hosts)
    for host in hosts or ():
        check_name("host", host)
    mark = session.warning_mark()
    with recorded(session, project, "start", ",".join(hosts or []) or project):
        sighting = sight(session, project)
        away = unreachable_failures(session, project, sighting.unreachable, hosts)
        chosen = _select(sighting, project, hosts, away)
        ensure_networks_active(session, sighting)
        failed = {f.name: f for f in away}
        started, readiness = _start_hosts(
            session, project, [h.name for h in chosen], wait=wait, sighting=sighting,
            failed=failed,
        )
    return ApplyResult("start", project, Plan(project), (), started, readiness,
                       session.warnings_since(mark), tuple(failed.values()))


def _start_hosts(
    session: Session,
    project: str,
    names: list[str],
    *,
    wait: bool,
    sighting: Sighting | None = None,
    failed: dict[str, Failed] | None = None,
) -> tuple[tuple[str, ...], tuple[HostReadiness, ...]]:
    """Start (or resume) the named hosts; the ones started and, when waited for, readiness.

    Waited for, guests boot through each service host's boot queue
    (:mod:`corral.ops.booting`): a few at a time, each timed from its own start.
    Not waited for, they are all started at once (there is nothing to pace).

    With ``failed``, a host that cannot be started (its service host refuses or
    is gone) is put there with the reason and not waited for; the others go on.
    Without it, the first such error is raised."""
    if not names:
        return (), ()
    sighting = sighting or sight(session, project)
    chosen = [sighting.project.hosts[n] for n in names if n in sighting.project.hosts]
    booted = [s for s in chosen if s.state != DomainState.RUNNING.value]

    def boot(seen: ObservedHost) -> None:
        backend = session.backend(seen.service_host)
        if seen.state == DomainState.PAUSED.value:
            backend.resume(seen.domain)
        else:
            backend.start(seen.domain)

    def refused(seen: ObservedHost, reason: str) -> None:
        """A host that could not be started: failed alone, or the whole call."""
        if failed is None:
            raise BackendError(f"{seen.domain} on service host {seen.service_host}: {reason}")
        failed[seen.name] = Failed("host", seen.name, seen.service_host, reason)

    if not wait:
        with session.reporter.progress("starting hosts", len(booted)) as bar:
            def boot_one(seen: ObservedHost) -> None:
                boot(seen)
                bar.advance(f"started {seen.domain}")

            answers = session.each(boot_one, booted, where=lambda s: s.service_host)
        for seen, answer in zip(booted, answers, strict=True):
            if isinstance(answer, CorralError):
                if failed is None:
                    raise answer
                refused(seen, answer.message)
        return tuple(s.name for s in booted if s.name not in (failed or {})), ()

    by_domain = {seen.domain: seen for seen in chosen}
    started: set[str] = set()

    def start_job(job: booting.BootJob) -> None:
        boot(by_domain[job.target.domain])
        started.add(job.target.domain)

    networks = _networks_by_service_host(sighting)
    queues = []
    for service_host, places in _boot_places(session, chosen, booted).items():
        try:
            console_ok = session.capabilities(service_host).console_log
        except CorralError:
            console_ok = False  # the service host is failing: its starts will say so
        here = [s for s in chosen if s.service_host == service_host]
        jobs = tuple(
            booting.BootJob(Target(seen.model or Host(name=seen.name), seen.domain),
                            start=seen.state != DomainState.RUNNING.value)
            for seen in sorted(here, key=lambda s: s.state != DomainState.RUNNING.value)
        )
        observe = partial(
            _observe_for_readiness, session, project, service_host,
            networks=networks.get(service_host, []), console_readable=console_ok,
        )
        queues.append(booting.HostQueue(service_host, jobs, places.slots, start_job, observe,
                                        places))
        starting = sum(job.start for job in jobs)
        if starting:
            session.reporter.note(
                f"booting {starting} host(s) on {service_host}, at most {places.slots} at once"
            )
    with session.reporter.progress("booting hosts", len(chosen)) as bar:
        def finished(_service_host: str, outcome: Outcome) -> None:
            bar.advance(
                f"{outcome.target.domain}: {'ready' if outcome.ready else 'NOT READY'} "
                f"({outcome.reason}) after {outcome.seconds:g} s"
            )

        outcomes = booting.boot_all(queues, events=booting.Events(finished=finished))
    unstarted = [s for s in booted if s.domain not in started]
    for seen in unstarted:
        refused(seen, outcomes[seen.domain].reason.removeprefix("did not start: "))
    return (
        tuple(s.name for s in booted if s.domain in started),
        tuple(_readiness(outcomes[seen.domain]) for seen in chosen
              if seen not in unstarted),
    )


def _boot_places(
    session: Session, chosen: Sequence[ObservedHost], booted: Sequence[ObservedHost]
) -> dict[str, booting.BootPlaces]:
    """Where guests boot on each service host of ``chosen``: a host that starts
    something boots them in the session's places there, shared with the other
    projects the session starts, as many as the site config's ``boot_parallel``
    or, else, chosen from the host's CPUs and their load when the first project
    boots there; a host where nothing is started (its guests run already, only
    watched) has a place for each and is not asked."""
    hosts = sorted({seen.service_host for seen in chosen})
    starting = {seen.service_host for seen in booted}

    def slots(service_host: str) -> int:
        config = session.site.service_hosts.get(service_host)
        if config is not None and config.boot_parallel is not None:
            return config.boot_parallel
        try:
            load = session.backend(service_host).node_stats()
        except CorralError as error:
            session.warn(f"service host {service_host}: CPU load not read ({error.message}); "
                         f"booting {booting.SLOTS_PER_FREE_CPU} guests at once")
            return booting.SLOTS_PER_FREE_CPU
        busy = load.cpus * (load.cpu_percent or 0.0) / 100
        return booting.choose_slots(load.cpus, busy)

    def places(service_host: str) -> booting.BootPlaces:
        if service_host not in starting:
            return booting.BootPlaces(sum(seen.service_host == service_host for seen in chosen))
        return session.boot_places(service_host, partial(slots, service_host))

    return dict(zip(hosts, session.parallel(places, hosts), strict=True))


def _readiness(outcome: Outcome) -> HostReadiness:
    return HostReadiness(outcome.target.host.name, outcome.target.domain, outcome.ready,
                         outcome.reason, outcome.seconds, outcome.started_s)


def _networks_by_service_host(sighting: Sighting) -> dict[str, list[str]]:
    return {sh: [n.name for n in seen.networks] for sh, seen in sighting.raw.items()}


def _observe_for_readiness(
    session: Session,
    project: str,
    service_host: str,
    pending: Sequence[Target],
    *,
    networks: list[str],
    console_readable: bool,
) -> dict[str, Observation]:
    """One pass over one service host for the guests booting there: domain states
    and DHCP leases in one call each, then each guest's console (and ping/ssh)."""
    backend = session.backend(service_host)
    result: dict[str, Observation] = {}
    try:  # a service host failing mid-wait leaves its guests unready, not the others
        states = {n: state.value for n, state in backend.domain_states(project).items()}
        leases = backend.leases(networks)
    except CorralError as error:
        return {target.domain: Observation(
            f"unknown (service host {service_host}: {error.message})", None, {}
        ) for target in pending}
    for target in pending:
        console = None
        if console_readable:
            try:
                console = backend.console_output(target.domain)
            except CorralError:
                console = None  # unreadable now: AUTO falls back to the leases
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
) -> StopResult:
    """ACPI shutdown of the chosen hosts (``@GROUP``: a group's members) in parallel,
    forced after ``timeout_s``."""
    check_name("project", project)
    hosts = expand_hosts(session, project, hosts)
    for host in hosts or ():
        check_name("host", host)
    if timeout_s < 0:
        raise InvalidRequest(f"timeout {timeout_s} s is negative")
    mark = session.warning_mark()
    with recorded(session, project, "stop", ",".join(hosts or []) or project):
        sighting = sight(session, project)
        failed = unreachable_failures(session, project, sighting.unreachable, hosts)
        chosen = _select(sighting, project, hosts, failed)

        def halt(seen: ObservedHost) -> HostStopped:
            outcome = session.backend(seen.service_host).shutdown(seen.domain, timeout_s)
            return HostStopped(seen.name, seen.domain, outcome.value)

        with session.reporter.progress("stopping hosts", len(chosen)):
            answers = session.each(halt, chosen, where=lambda s: s.service_host)
        stopped = [a for a in answers if isinstance(a, HostStopped)]
        failed += [Failed("host", seen.name, seen.service_host, a.message)
                   for seen, a in zip(chosen, answers, strict=True)
                   if isinstance(a, CorralError)]
    return StopResult(project, tuple(stopped), session.warnings_since(mark), tuple(failed))


# ---------------------------------------------------------------- remove
def describe_removal(session: Session, project: str) -> RemovalPreview:
    """What ``remove`` would delete; NotFoundError when the project has nothing on
    any service host and every service host answered."""
    check_name("project", project)
    seen = observe_each(session, project)
    raw = seen.raw
    for name, reason in seen.unreachable.items():
        session.warn(f"service host {name} did not answer ({reason}); "
                     "what it holds is not listed")
    preview = RemovalPreview(
        project,
        tuple(d.name for seen in raw.values() for d in seen.domains),
        tuple(n.name for seen in raw.values() for n in seen.networks),
        tuple(v.name for seen in raw.values() for v in seen.volumes),
    )
    if not (preview.domains or preview.networks or preview.volumes or seen.unreachable):
        raise NotFoundError(f"project '{project}' has nothing on any service host")
    return preview


def remove(session: Session, project: str, *, wait_lock: bool = True) -> RemoveResult:
    """Destroy and delete the project's domains, disks, networks and pools; nothing else.

    Each service host is emptied on its own: one that does not answer or fails
    keeps its part (named in ``failed``), the project stays recorded, and a
    rerun once it is back removes the rest."""
    check_name("project", project)
    mark = session.warning_mark()
    removed: list[Removed] = []
    with (
        project_lock(session, project, "remove", wait=wait_lock),
        recorded(session, project, "remove", project) as entry,
    ):
        seen_now = observe_each(session, project)
        failed = unreachable_failures(session, project, seen_now.unreachable)

        def empty(service_host: str) -> tuple[list[Removed], list[Failed]]:
            return _remove_from(session, project, service_host, seen_now.raw[service_host])

        answers = session.each(empty, list(seen_now.raw))
        for service_host, answer in zip(seen_now.raw, answers, strict=True):
            if isinstance(answer, CorralError):
                failed.append(Failed("service-host", service_host, service_host, answer.message))
            else:
                removed += answer[0]
                failed += answer[1]
        entry.detail = f"removed {len(removed)} object(s)"
        if failed:
            entry.detail += "; left: " + "; ".join(f.describe() for f in failed)
    if not failed:
        _forget(session, project)
    return RemoveResult(project, tuple(removed), session.warnings_since(mark), tuple(failed))


def _remove_from(
    session: Session, project: str, service_host: str, seen: Observed
) -> tuple[list[Removed], list[Failed]]:
    """Empty one service host of the project: domains in parallel, then left-over
    disks, networks and the pool; what failed is named, the rest goes on."""
    backend = session.backend(service_host)
    removed: list[Removed] = []
    failed: list[Failed] = []

    def teardown(domain: ObservedDomain) -> None:
        applying.teardown_host(backend, project, domain.host, domain.name)

    answers = session.each(teardown, list(seen.domains), where=lambda _d: service_host)
    for domain, answer in zip(seen.domains, answers, strict=True):
        if isinstance(answer, CorralError):
            failed.append(Failed("host", domain.host, service_host, answer.message))
        else:
            removed.append(Removed("domain", domain.name, domain.host, service_host))
    kept = {v.host for v in seen.volumes} - {d.host for d in seen.domains}
    for volume_host in sorted(kept):
        try:
            backend.delete_volumes(project, volume_host)
        except CorralError as error:
            failed.append(Failed("host", volume_host, service_host, error.message))
            continue
        removed.append(Removed("disks", volume_host, volume_host, service_host))
    for network in seen.networks:
        try:
            backend.remove_network(network.name)
        except CorralError as error:
            failed.append(Failed("switch", network.switch, service_host, error.message))
            continue
        removed.append(Removed("network", network.name, network.switch, service_host))
    if (seen.volumes or seen.domains) and not failed:
        try:
            backend.remove_pool(project)
        except CorralError as error:
            failed.append(Failed("service-host", service_host, service_host,
                                 f"project pool not removed: {error.message}"))
    return removed, failed


def _forget(session: Session, project: str) -> None:
    store = session.store
    if store is None:
        return
    try:
        store.forget_project(project)
    except CorralError as error:  # a database fault is only a warning
        session.warn(f"project {project} not forgotten by the state database: {error}")


# ---------------------------------------------------------------- status / list / info
@dataclass(frozen=True)
class ProjectSummary:
    name: str
    hosts: int
    running: int
    switches: int
    service_hosts: list[str]
    source: str | None

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def list_projects(session: Session) -> list[ProjectSummary]:
    raw = observe_everywhere(session, None)
    names: set[str] = set().union(*(seen.projects() for seen in raw.values())) if raw else set()
    store = session.store
    summaries = []
    for name in sorted(names):
        domains = [d for seen in raw.values() for d in seen.domains if d.project == name]
        networks = {n.switch for seen in raw.values() for n in seen.networks if n.project == name}
        where = sorted({sh for sh, seen in raw.items() if name in seen.projects()})
        record = None
        if store is not None:
            try:
                record = store.get_project(name)
            except CorralError as error:  # a database fault is only a warning
                session.warn(f"recorded project {name} not read: {error}")
        summaries.append(ProjectSummary(
            name, len(domains), sum(d.state is DomainState.RUNNING for d in domains),
            len(networks), where, record.source_path if record else None,
        ))
    return summaries


def host_info(session: Session, service_host: str | None) -> dict[str, object]:
    """Facts and capabilities of a service host (the site's default when None)."""
    name = service_host or session.site.fallback_service_host()
    info = asdict(session.backend(name).host_info())
    info["capabilities"] = session.capabilities(name).as_json()
    return info


def recorded_source(session: Session, project: str) -> ProjectSource:
    """The project's current file: the text last applied through the server or saved
    in the web portal (kept in the state database, and read as a request's text
    is: no file of this machine), else the file on this machine it was last
    applied from, read again.
    """
    check_name("project", project)
    store = session.store
    saved = ProjectTexts(store).get(project) if store is not None else None
    if saved is not None:
        return ProjectSource(saved.text, saved.name, Path("/"), local_files=False)
    record = recorded_project(session, project)
    if record is None:
        raise NotFoundError(f"project '{project}' not found",
                            hint="a project is known once `corral up` or `build` recorded it")
    path = Path(record.source_path)
    if not path.is_absolute():
        raise InvalidRequest(
            f"project '{project}' was recorded from a request ({record.source_path}), "
            "not from a file on the server", hint="send the project file's text instead")
    return ProjectSource.from_path(path)


def save_source(session: Session, project: str, source: ProjectSource) -> ProjectText:
    """Keep ``source`` as project ``project``'s file in the state database (the web
    portal's editor), for later ``show``, ``plan``, ``up`` and ``upgrade``.

    Only a file that loads and declares this very project is kept: anything
    else is refused with every positioned error, and the saved file stays.
    The project's lock is taken, not waited for: while an operation changes
    the project (which records the file it applied when it ends) a save is
    refused at once, naming that operation, instead of being lost or keeping
    a request waiting for minutes.
    """
    check_name("project", project)
    with project_lock(session, project, "save", wait=False):
        return store_source(session, project, source)


def store_source(session: Session, project: str, source: ProjectSource) -> ProjectText:
    """:func:`save_source` for a caller that holds the project's lock itself."""
    check_name("project", project)
    model = load_source(source, session.site)
    if model.name != project:
        raise SourceErrors.single(
            Span(source.name, 1, 1),
            f"the file declares project '{model.name}', not '{project}'",
            hint=f"keep 'project {project}' in its global block")
    return ProjectTexts(session.require_store()).save(project, source.name, source.text,
                                                      session.identity.name)

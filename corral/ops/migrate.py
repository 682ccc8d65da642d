"""Moving hosts to another service host: live migration and cold moves.

A host whose ``service_host`` alone changed (a ``migrate-host`` action, or
``corral vm migrate``) moves with its disks instead of being rebuilt:

* running (or paused): live migration, the guest never stops. With shared
  storage (the host's pool is the same directory on both service hosts, as a
  probe volume shows) only memory moves; otherwise the target gets overlays on
  the same template and the disks' own layers are copied during migration;
* stopped: its volumes are streamed to the target and checksummed there, the
  definition moves, and only then are the source's volumes deleted.

The target is prepared through the backend only: the project's pool, the seed,
the kernel and initrd copies and the switches' networks for the new placement.
Afterwards the host is redefined on the target like any update, so Corral's
metadata records the new service host and any other change of the same run is
applied there. A move that fails leaves the guest where it was (libvirt rolls
a failed live migration back) and the error says so; what Corral prepared on
the target for it is deleted again, never anything on shared storage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from corral.backends.base import Backend, Observed, ObservedVolume, StoragePlace
from corral.errors import BackendError, ConflictError, CorralError, NotFoundError, SourceErrors
from corral.images.seed import build_seed
from corral.lang.edit import set_host_key
from corral.model import Host, PlacedBy, Project, Virt
from corral.model.project import DiskType
from corral.ops.apply import boot_spec, update_host
from corral.ops.files import replace_text
from corral.ops.journal import project_lock, recorded, recorded_project
from corral.ops.observe import Sighting, sight
from corral.ops.requests import check_name
from corral.ops.results import ActionResult, Applied, MigrateResult
from corral.ops.session import Session
from corral.ops.source import ProjectSource
from corral.ops.switches import ensure_switches, retire_networks, switch_spans
from corral.ops.vms import parse_target
from corral.plan import Action, ActionKind, ObservedHost
from corral.plan.diff import MOVE_FIELD
from corral.plan.spans import switch_placement

MIB = 1024 * 1024
LIVE_STATES = frozenset({"running", "paused"})


@dataclass(frozen=True, slots=True)
class Move:
    """How one host moved: ``live``, ``cold``, or ``none`` (it was there already)."""

    host: str
    source: str
    target: str
    mode: str
    shared_storage: bool = False
    place: StoragePlace = field(default_factory=StoragePlace)


def move_hosts(
    session: Session,
    project: Project,
    actions: Sequence[Action],
    sighting: Sighting,
    networks: dict[tuple[str, str], str],
) -> list[ActionResult]:
    """Carry out ``migrate-host`` actions: move each host, then apply its other
    changes on the target; networks no host needs any more on a source go."""
    moves: list[Move] = []

    def one(action: Action) -> ActionResult:
        assert action.host is not None
        seen = sighting.domain(action.target)
        if seen is None:
            raise ConflictError(f"host {action.target} of project {project.name} vanished")
        move = move_host(session, project.name, action.host, seen, sighting.raw)
        moves.append(move)
        rest = replace(action, kind=ActionKind.UPDATE_HOST,
                       changes=tuple(c for c in action.changes if c.field != MOVE_FIELD))
        updated = update_host(session, project, rest, sighting, networks)
        live = {c.field for c in updated.changes if c.applied is Applied.LIVE}
        if move.mode == "live" or (move.mode == "none" and seen.state in LIVE_STATES):
            live.add(MOVE_FIELD)  # a cold move takes effect when the guest next boots
        return ActionResult.of(action, frozenset(live))

    try:
        results = session.parallel(one, list(actions))
    finally:
        release_shared_pools(session, project.name, moves)
    return results  # networks left unused on a source go at the end of execute


def release_shared_pools(session: Session, project: str, moves: Sequence[Move]) -> None:
    """After moves on shared storage (all of them, never while one runs): undefine
    each source's pool of that storage when no domain of the project there keeps
    its disks in it, so that no later removal there deletes volumes the target
    uses. The directory and its volumes stay."""
    for source, place in sorted({(m.source, m.place) for m in moves if m.shared_storage},
                                key=lambda item: (item[0], str(item[1]))):
        backend = session.backend(source)
        try:
            seen = backend.observe(project)
        except CorralError as error:
            session.warn(f"storage pool of {project} on {source} kept: {error.message}")
            continue
        _forget_unused_pool(session, backend, project, place, seen)


def move_host(
    session: Session, project: str, host: Host, seen: ObservedHost, raw: dict[str, Observed],
    *, before_moving: Callable[[], object] | None = None,
) -> Move:
    """Move the domain ``seen`` to ``host.service_host``; see the module's docstring.

    ``before_moving`` is waited for once the target is prepared, before the
    domain moves: work the caller runs meanwhile that the move needs (the
    target's networks); its error fails the move like a preparation's."""
    source_name, target_name = seen.service_host, host.placed_on
    if source_name == target_name:
        return Move(host.name, source_name, target_name, "none")
    vm = f"{project}.{host.name}"
    live = seen.state in LIVE_STATES
    where = f"it still {'runs' if live else 'is'} on {source_name}"
    if seen.state == "suspended":
        raise ConflictError(
            f"cannot move {vm} to {target_name}: it is suspended, its memory saved on "
            f"{source_name}",
            hint=f"corral vm restore {vm} (then it moves live), or stop it to move it cold",
        )
    if host.virt is Virt.LXC:
        raise ConflictError(
            f"cannot move {vm} to {target_name}: it is a container, whose root is a directory "
            f"of {source_name}; containers run only on the service host of this machine",
            hint=f"keep service_host {source_name} for it",
        )
    old = seen.model or host
    place = StoragePlace.of(old)
    source = session.backend(source_name)
    shared: bool | None = None  # not known until the probe answered
    try:
        target = session.backend(target_name)
        if live and not session.capabilities(target_name).migration:
            raise ConflictError(f"service host {target_name} does not offer live migration",
                                hint=f"stop {vm} to move it cold")
        _refuse_if_defined(raw.get(target_name), host.name, target_name)
        shared = source.shares_storage_with(target, project, place)
        if not shared:
            target.delete_volumes(project, host.name)  # copies cut short by an earlier run
        prepare_target(session, project, old, target, place, raw[source_name],
                       copy_disks=live and not shared)
        if before_moving is not None:
            before_moving()
    except CorralError as error:
        if shared is not None:
            _undo(session, target, project, host.name, place, shared, raw.get(target_name))
        raise _failed(error, f"cannot move {vm} from {source_name} to {target_name}",
                      where) from error
    session.reporter.note(
        f"moving {vm} from {source_name} to {target_name} "
        f"({'live' if live else 'cold'}, {'shared storage' if shared else 'disks copied'})"
    )
    try:
        if live:
            address = session.site.service_hosts[target_name].migration_address
            source.migrate_live(seen.domain, target, address=address, copy_storage=not shared)
        else:
            if not shared:
                for volume in _volumes(raw[source_name], host.name, ("disk", "data")):
                    source.copy_volume(volume, target, project, place)
            source.move_definition(seen.domain, target)
    except CorralError:
        if _still_here(source, seen.domain):
            _undo(session, target, project, host.name, place, shared, raw.get(target_name))
        raise
    if not shared:
        source.delete_volumes(project, host.name)
    return Move(host.name, source_name, target_name, "live" if live else "cold", shared, place)


def prepare_target(
    session: Session,
    project: str,
    host: Host,
    target: Backend,
    place: StoragePlace,
    seen: Observed,
    *,
    copy_disks: bool,
) -> None:
    """What the domain needs on the target besides what migration copies: the
    kernel and initrd copies, the seed and, when disks are copied live, their
    volumes (the run copy an overlay on the template as the target has it)."""
    template = session.registry.get(host.template or "")

    def disks() -> None:
        if not place.volume_group:
            target.template_disk(template)  # what the moved run copy is backed by there
        if not copy_disks:
            return
        for volume in _volumes(seen, host.name, ("disk",)):
            target.create_run_copy(project, host.name, template,
                                   (volume.capacity or 0) // MIB, place)
        raw = {d.name for d in host.disks if d.type is DiskType.RAW and d.path is None}
        for volume in _volumes(seen, host.name, ("data",)):
            size = -(-(volume.capacity or MIB) // MIB)
            target.create_data_disk(project, host.name, volume.disk or "", size, place,
                                    raw=volume.disk in raw)

    # Three independent round-trip chains on the target, at once.
    session.parallel(_run_step, [
        disks,
        lambda: target.stage_boot(project, boot_spec(host, template), place),
        lambda: target.upload_seed(
            project, host.name, build_seed(host, project, template.packages), place),
    ])


def _run_step(step: Callable[[], object]) -> object:
    """Run one of several independent steps given to :meth:`Session.parallel`."""
    return step()


def _undo(
    session: Session, target: Backend, project: str, host: str, place: StoragePlace,
    shared: bool, seen: Observed | None,
) -> None:
    """After a failed move, what it prepared on the target (never shared volumes);
    a failure here is a warning, the move's own error is what the caller reports."""
    try:
        if shared:
            _forget_unused_pool(session, target, project, place, seen)
        else:
            target.delete_volumes(project, host)
    except CorralError as error:
        session.warn(f"what was prepared on {target.name} for {project}.{host} is left: "
                     f"{error.message}")


def _forget_unused_pool(
    session: Session, backend: Backend, project: str, place: StoragePlace,
    seen: Observed | None, moved: str | None = None,
) -> None:
    """Undefine ``backend``'s definition of a shared pool when none of the
    project's other domains there keeps its volumes at ``place``, so that no later
    removal there deletes volumes another service host uses."""
    others = [d for d in seen.domains if d.host != moved] if seen else []
    if any(d.model is None or StoragePlace.of(d.model) == place for d in others):
        return
    try:
        backend.forget_pool(project, place)
    except CorralError as error:
        session.warn(f"storage pool of {project} on {backend.name} kept: {error.message}")


def _volumes(seen: Observed, host: str, kinds: tuple[str, ...]) -> list[ObservedVolume]:
    return [v for v in seen.volumes if v.host == host and v.kind in kinds]


def _refuse_if_defined(seen: Observed | None, host: str, service_host: str) -> None:
    if seen is not None and any(d.host == host for d in seen.domains):
        raise ConflictError(
            f"host {host} has a domain on {service_host} already",
            hint="remove the stale one there (corral sees the host on two service hosts)",
        )


def _still_here(backend: Backend, domain: str) -> bool:
    try:
        return any(d.name == domain for d in backend.observe().domains)
    except CorralError:
        return True  # unknown: keep what was prepared rather than risk anything


def _failed(error: CorralError, what: str, where: str) -> CorralError:
    """``error`` of the same kind, saying what failed and that the guest stayed."""
    message = f"{what}: {error.message}; {where}"
    if isinstance(error, SourceErrors):
        return BackendError(message)
    return type(error)(message, hint=error.hint)


# ---------------------------------------------------------------- corral vm migrate
def vm_migrate(
    session: Session,
    target: str,
    service_host: str,
    *,
    offline: bool = False,
    update_file: bool = True,
    wait_lock: bool = True,
    timeout_s: float = 60,
) -> MigrateResult:
    """Move the VM ``PROJECT.HOST`` to ``service_host``, then make the project file
    say so (or, with ``update_file=False`` or where no safe edit exists, say
    which line to change).

    The VM moves as it is defined in libvirt (its recorded model): changes of
    the file not yet applied stay for ``upgrade``. A running VM moves live;
    ``offline`` shuts it down first (forced after ``timeout_s``), moves it cold
    and starts it on the target. A failed move leaves it running where it was.
    """
    project, host = parse_target(target)
    check_name("service host", service_host)
    session.backend(service_host)  # NotFoundError naming the configured ones
    mark = session.warning_mark()
    with (
        project_lock(session, project, "vm migrate", wait=wait_lock, target=target),
        recorded(session, project, f"migrate {service_host}", target) as entry,
    ):
        sighting = sight(session, project)
        seen = sighting.domain(host)
        if seen is None:
            known = ", ".join(f"{project}.{h}" for h in sorted(sighting.project.hosts))
            raise NotFoundError(f"no VM '{target}'", hint=f"known VMs: {known or 'none'}")
        if seen.model is None:
            raise ConflictError(f"{target}: the host model recorded in libvirt cannot be read",
                                hint="corral upgrade -f FILE records it again")
        attached = [d for d in seen.model.disks if d.path is not None]
        if attached and seen.service_host != service_host:
            raise ConflictError(
                f"{target}: disk {attached[0].name} attaches {attached[0].path}, a file of "
                f"service host {seen.service_host}; Corral does not move files it did not create",
                hint="take the disk out of the file (upgrade), move, then attach a copy there",
            )
        moved = seen.model.model_copy(update={"service_host": service_host})
        model = _recorded_project(sighting, moved)
        spans = switch_spans(session, model)
        restart = offline and seen.state in LIVE_STATES and seen.service_host != service_host
        if restart:
            session.backend(seen.service_host).shutdown(seen.domain, timeout_s)
            seen = replace(seen, state="shutoff")
        # The target's networks are made while the move prepares its volumes:
        # starting a network (its dnsmasq) is the longest step before the move.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="switches") as pool:
            switching = pool.submit(ensure_switches, session, model, spans)
            try:
                move = move_host(session, project, moved, seen, sighting.raw,
                                 before_moving=switching.result)
            except CorralError:
                wait([switching])
                if restart:
                    session.backend(seen.service_host).start(seen.domain)
                _drop_new_networks(session, sighting, service_host)
                raise
        networks = switching.result()
        update = Action(ActionKind.UPDATE_HOST, host, host=moved)

        def on_target() -> None:
            update_host(session, model, update, replace(sighting, project=replace(
                sighting.project, hosts={**sighting.project.hosts, host: seen})), networks)
            if restart:
                session.backend(service_host).start(seen.domain)

        # What the guest left behind on the source, each beside the other and
        # beside the target's update: they touch different objects.
        session.parallel(_run_step, [
            on_target,
            lambda: release_shared_pools(session, project, [move]),
            lambda: retire_networks(session, sighting, spans),
        ])
        entry.detail = f"{move.mode} from {move.source} to {move.target}"
    file, updated, note = _record_in_file(session, project, host, service_host,
                                          update=update_file)
    mode = "cold" if restart else move.mode
    return MigrateResult(target, move.source, service_host, mode, move.shared_storage, file,
                         updated, note, session.warnings_since(mark))


def _drop_new_networks(session: Session, sighting: Sighting, service_host: str) -> None:
    """After a failed move: the networks made on ``service_host`` for it, which no
    host of the project (all still where they were) needs there."""
    project = _recorded_project(sighting, None)
    before = sighting.raw.get(service_host)
    existed = {n.name for n in before.networks} if before else set()
    placed = switch_placement(project, session.site.fallback_service_host())
    try:
        backend = session.backend(service_host)
        for network in backend.observe(project.name).networks:
            if network.name not in existed and service_host not in placed.get(network.switch, ()):
                backend.remove_network(network.name)
    except CorralError as error:
        session.warn(f"networks made on {service_host} for the move are left: {error.message}")


def _recorded_project(sighting: Sighting, moved: Host | None) -> Project:
    """The project as libvirt records it, with ``moved`` in place of its old self."""
    hosts = {n: h.model for n, h in sighting.project.hosts.items() if h.model is not None}
    switches = {n: s.model for n, s in sighting.project.switches.items() if s.model is not None}
    if moved is None:
        return Project(name=sighting.project.name, hosts=hosts, switches=switches)
    hosts[moved.name] = moved
    missing = sorted({i.switch for i in moved.interfaces if i.switch} - set(switches))
    if missing:
        raise ConflictError(
            f"host {moved.name}: the recorded model of switch {', '.join(missing)} cannot "
            "be read", hint="corral upgrade -f FILE records it again",
        )
    return Project(name=sighting.project.name, hosts=hosts, switches=switches)


def _record_in_file(
    session: Session, project: str, host: str, service_host: str, *, update: bool,
) -> tuple[str | None, bool, str]:
    """Make the project file name the new service host: ``(file, updated, note)``.

    The file is the one the project was last applied from (the state database
    records it); the host's position comes from loading it. The edit is
    checked by loading the file again; if the host would not resolve to the
    new service host, the file is put back and the note says what to change.
    """
    by_hand = f"set `service_host {service_host}` in host {host} of project {project}'s file"
    path = _recorded_path(session, project)
    if path is None:
        return None, False, f"{by_hand} (no project file is recorded for {project})"
    try:
        source = ProjectSource.from_path(path)
        resolved = source.load(session.site).hosts.get(host)
    except SourceErrors as errors:
        return str(path), False, f"{by_hand} ({path} does not load now: {errors.message})"
    if resolved is None or resolved.origin is None:
        return str(path), False, f"{by_hand} ({path} no longer has host {host})"
    if resolved.service_host == service_host:
        return str(path), False, f"{path} names service host {service_host} already"
    origin = resolved.origin
    file = path if origin.file == source.name else source.locate(Path(origin.file))
    text = file.read_text(encoding="utf-8")
    edit = set_host_key(
        text, origin.file, host, "service_host", service_host,
        at=(origin.line, origin.column), current=resolved.service_host or "",
        # A host the file places but whose block and superclasses do not say
        # where got it from a plugin: no default matches it, so it is not edited.
        # One the site or the scheduler placed gets a line of its own.
        default="" if resolved.placed_by is PlacedBy.FILE else resolved.service_host or "",
    )
    if not update or edit.text is None:
        note = edit.instruction if edit.text is None else (
            f"{origin.file}:{edit.line}: {_what(edit.instruction)}"
        )
        return str(file), False, note
    replace_text(file, edit.text)
    try:
        after = ProjectSource.from_path(path).load(session.site).hosts.get(host)
    except SourceErrors:
        after = None
    if after is None or after.service_host != service_host:
        replace_text(file, text)
        return str(file), False, f"{by_hand} (editing {file} did not give that; left as it was)"
    return str(file), True, edit.instruction


def _what(instruction: str) -> str:
    """An edit's description made an instruction: ``FILE:LINE: X`` -> ``change: X``."""
    return "change: " + instruction.split(": ", 1)[-1]


def _recorded_path(session: Session, project: str) -> Path | None:
    record = recorded_project(session, project)
    if record is None or not Path(record.source_path).is_file():
        return None
    return Path(record.source_path)

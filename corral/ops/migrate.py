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

from collections.abc import Sequence
from dataclasses import dataclass, replace

from corral.backends.base import Backend, Observed, ObservedVolume, StoragePlace
from corral.errors import BackendError, ConflictError, CorralError, SourceErrors
from corral.images.seed import build_seed
from corral.model import Host, Project
from corral.ops.observe import Sighting
from corral.ops.results import ActionResult, Applied
from corral.ops.session import Session
from corral.plan import Action, ActionKind, ObservedHost
from corral.plan.diff import MOVE_FIELD

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


def move_hosts(
    session: Session,
    project: Project,
    actions: Sequence[Action],
    sighting: Sighting,
    networks: dict[tuple[str, str], str],
) -> list[ActionResult]:
    """Carry out ``migrate-host`` actions: move each host, then apply its other
    changes on the target; networks no host needs any more on a source go."""
    from corral.ops.apply import update_host

    def one(action: Action) -> ActionResult:
        assert action.host is not None
        seen = sighting.domain(action.target)
        if seen is None:
            raise ConflictError(f"host {action.target} of project {project.name} vanished")
        move = move_host(session, project.name, action.host, seen, sighting.raw)
        rest = replace(action, kind=ActionKind.UPDATE_HOST,
                       changes=tuple(c for c in action.changes if c.field != MOVE_FIELD))
        updated = update_host(session, project, rest, sighting, networks)
        live = {c.field for c in updated.changes if c.applied is Applied.LIVE}
        if move.mode == "live" or (move.mode == "none" and seen.state in LIVE_STATES):
            live.add(MOVE_FIELD)  # a cold move takes effect when the guest next boots
        return ActionResult.of(action, frozenset(live))

    results = session.parallel(one, list(actions))
    sources = {s.service_host for a in actions if (s := sighting.domain(a.target))}
    drop_unused_networks(session, project, sighting, sources)
    return results


def move_host(
    session: Session, project: str, host: Host, seen: ObservedHost, raw: dict[str, Observed]
) -> Move:
    """Move the domain ``seen`` to ``host.service_host``; see the module's docstring."""
    source_name, target_name = seen.service_host, host.service_host
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
    old = seen.model or host
    place = StoragePlace.of(old)
    source = session.backend(source_name)
    try:
        target = session.backend(target_name)
        if live and not session.capabilities(target_name).migration:
            raise ConflictError(f"service host {target_name} does not offer live migration",
                                hint=f"stop {vm} to move it cold")
        _refuse_if_defined(raw.get(target_name), host.name, target_name)
        shared = source.shares_storage_with(target, project, place)
        if not shared:
            target.delete_volumes(project, host.name)  # copies cut short by an earlier run
        _prepare(session, project, old, target, place, raw[source_name], copy_disks=live
                 and not shared)
    except CorralError as error:
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
        if not shared and _still_here(source, seen.domain):
            target.delete_volumes(project, host.name)  # only what this move prepared
        raise
    if not shared:
        source.delete_volumes(project, host.name)
    return Move(host.name, source_name, target_name, "live" if live else "cold", shared)


def _prepare(
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
    from corral.ops.apply import boot_spec

    template = session.registry.get(host.template or "")
    target.stage_boot(project, boot_spec(host, template))
    target.upload_seed(project, host.name, build_seed(host, project), place)
    if not copy_disks:
        return
    for volume in _volumes(seen, host.name, ("disk",)):
        target.create_run_copy(project, host.name, template, (volume.capacity or 0) // MIB,
                               place)
    for volume in _volumes(seen, host.name, ("data",)):
        size = -(-(volume.capacity or MIB) // MIB)
        target.create_data_disk(project, host.name, volume.disk or "", size, place)


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


def drop_unused_networks(
    session: Session, project: Project, sighting: Sighting, service_hosts: set[str]
) -> None:
    """Remove the project's networks on ``service_hosts`` that no switch placement
    needs there any more (their last host moved away)."""
    from corral.ops.apply import switch_placement

    placed = switch_placement(project, session.site.defaults.service_host)
    for name in sorted(service_hosts):
        seen = sighting.raw.get(name)
        for network in seen.networks if seen else ():
            if name not in placed.get(network.switch, set()):
                session.backend(name).remove_network(network.name)

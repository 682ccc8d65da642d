"""A host's devices on its service host: what they need there before anything
is built, and the extra disks as the domain attaches them.

Needs: each host bridge an interface attaches to, and each existing image
file a disk attaches (``path``), must be on the host's service host. Asked
through libvirt (so a remote service host answers for itself), once per
service host and name, for the hosts a plan builds or changes. A service
host that cannot tell whether it has a bridge is a warning: the guest's
start then names it. Run by ``plan`` and by apply's check, so what is
missing is a positioned error before any domain is defined.

An attached image is the site's, not Corral's: it is never created, resized
or deleted, so it may not lie where Corral keeps (and deletes) its own
volumes, and a host that attaches one does not move to another service host
(the file stays where it is).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from functools import cache
from pathlib import PurePosixPath

from corral.backends.base import Backend, DiskSpec, StoragePlace
from corral.errors import CorralError, Diagnostic, NotFoundError, Span
from corral.model import Host, Project
from corral.model.project import Disk, DiskType
from corral.ops.session import Session
from corral.plan import ActionKind, Plan

Lookup = Callable[[str, str], "bool | None"]  # (service host, name) -> found, or unknown
_BUILT_OR_CHANGED = (
    ActionKind.CREATE_HOST, ActionKind.RECREATE_HOST, ActionKind.UPDATE_HOST,
    ActionKind.MIGRATE_HOST,
)


def host_span(host: Host) -> Span:
    origin = host.origin
    return Span(origin.file, origin.line, origin.column) if origin else Span("<project>", 1, 1)


def disk_specs(backend: Backend, project: str, host: Host) -> tuple[DiskSpec, ...]:
    """The host's extra disks as its domain attaches them, in file order: new ones
    created (or found, grown) in its storage, existing images as they are."""
    place = StoragePlace.of(host)
    return tuple(
        _attached(backend, host, disk) if disk.path is not None
        else backend.create_data_disk(
            project, host.name, disk.name, disk.size_mib or 0, place,
            raw=disk.type is DiskType.RAW,
        )
        for disk in host.disks
    )


def _attached(backend: Backend, host: Host, disk: Disk) -> DiskSpec:
    """An existing image: the format the file gives, or probed for ``type image``."""
    assert disk.path is not None
    if disk.type is not DiskType.IMAGE:
        return DiskSpec(serial=disk.name, path=disk.path, format=disk.type.value)
    found = backend.image_format(disk.path)
    if found is None:
        raise NotFoundError(_missing(host, disk))
    return DiskSpec(serial=disk.name, path=disk.path, format=found, probed=True)


def _missing(host: Host, disk: Disk) -> str:
    return (f"host {host.name}: disk {disk.name}: service host {host.service_host} has "
            f"no image file {disk.path}")


def device_problems(
    session: Session, project: Project, plan: Plan, unreachable: Collection[str] = ()
) -> list[Diagnostic]:
    """Every missing bridge or image file, and every image Corral could not leave
    alone, of the hosts the plan builds or changes; hosts on an ``unreachable``
    service host are not asked about."""

    @cache
    def has_bridge(service_host: str, bridge: str) -> bool | None:
        try:
            return session.backend(service_host).has_bridge(bridge)
        except CorralError:
            return None  # an unknown service host is reported by apply's check

    @cache
    def has_image(service_host: str, path: str) -> bool | None:
        try:
            return session.backend(service_host).image_format(path) is not None
        except CorralError:
            return None

    own = _corral_storage(session, project)
    problems: list[Diagnostic] = []
    for action in plan.of_kind(*_BUILT_OR_CHANGED):
        host = action.host
        if host is None or host.service_host is None or host.service_host in unreachable:
            continue
        problems += _bridge_problems(session, host, has_bridge)
        for disk in host.disks:
            if disk.path is None:
                continue
            problem = _image_problem(host, disk, own, action.kind, has_image)
            if problem is not None:
                problems.append(Diagnostic(host_span(host), problem[0], problem[1]))
    return problems


def _bridge_problems(session: Session, host: Host, has_bridge: Lookup) -> list[Diagnostic]:
    problems = []
    for nic in host.interfaces:
        if nic.bridge is None:
            continue
        found = has_bridge(host.placed_on, nic.bridge)
        if found is False:
            problems.append(Diagnostic(
                host_span(host),
                f"host {host.name}: interface {nic.name} attaches to bridge {nic.bridge}, "
                f"which service host {host.service_host} does not have",
                "create that bridge there, correct the name, or use a switch",
            ))
        elif found is None:
            session.warn(
                f"host {host.name}: service host {host.service_host} cannot tell whether "
                f"it has bridge {nic.bridge} (interface {nic.name}); its start fails if not"
            )
    return problems


def _image_problem(
    host: Host, disk: Disk, own: tuple[PurePosixPath, ...], kind: ActionKind,
    has_image: Lookup,
) -> tuple[str, str] | None:
    """Why ``disk`` (an existing image) cannot be attached, with a hint; None if it can."""
    assert disk.path is not None
    path = PurePosixPath(disk.path)
    inside = next((d for d in own if path.is_relative_to(d)), None)
    if inside is not None:
        return (f"host {host.name}: disk {disk.name}: {disk.path} is in {inside}, where "
                "Corral keeps the project's own volumes and deletes them with their hosts",
                "keep attached images in a directory of their own")
    if kind is ActionKind.MIGRATE_HOST:
        return (f"host {host.name}: disk {disk.name} attaches {disk.path}, a file on the "
                "service host it leaves; Corral does not move files it did not create",
                "take the disk out of the file for the move, then attach a copy there")
    if has_image(host.placed_on, disk.path) is False:
        return (_missing(host, disk), "correct the path, or put the image there first")
    return None


def _corral_storage(session: Session, project: Project) -> tuple[PurePosixPath, ...]:
    """The directories of the project's pools: the runs directory of each service
    host it uses (the site's, or the host's own ``runs``) and each ``filepath
    DIR``'s ``DIR/PROJECT``."""
    places = {PurePosixPath(str(session.site.runs_of(h.service_host)))
              for h in project.hosts.values() if h.service_host is not None}
    places.add(PurePosixPath(str(session.site.paths.runs)))
    places |= {PurePosixPath(h.filepath) / project.name
               for h in project.hosts.values() if h.filepath}
    return tuple(sorted(places))

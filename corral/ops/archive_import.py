"""``corral import``: a project archive made by ``corral export`` recreated here.

Before anything changes, every file of the archive is checked against the
manifest's sha256 (a mismatch is refused naming the file), every template the
archive names is compared with a registered template of that name (a
different one is refused naming it), and an existing project of the name is
refused unless ``replace`` (which removes it first, as ``corral remove``).

Then the project's files are written to ``DIR/NAME.project/`` (the project
name rewritten with ``--as``; every host that names its service host in the
file moved with ``--service-host``), and the project goes through the normal
build: under its lock, before libvirt is observed, each host's run copy and
extra disks are written into its pool on its service host from the archive
(upload streams, so remote service hosts work). The plan then finds them, and
the build makes seeds (for the project's new name) and domains from the
model, keeping those disks. An overlay's header is pointed at the template
as that service host holds it; a flattened run copy stands alone.

Templates: one registered under the archive's name is used after its
checksums matched; an absent one is registered from the archive when the
archive holds its disk (overlays); a flattened archive registers nothing, and
its hosts boot their standalone disks (a direct-boot template's kernel and
initrd come from the archive during the build). Changing such a host later
(``upgrade``) needs the template registered.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from corral.backends.base import Backend, StoragePlace, TemplateLike
from corral.errors import ConflictError, CorralError, NotFoundError
from corral.images import archive_files, qemuimg
from corral.images.archive_manifest import (
    CHUNK,
    ArchivedTemplate,
    ArchivedVolume,
    Manifest,
    inside,
    read_manifest,
    verify_file,
)
from corral.lang.edit import set_host_key, set_project_name
from corral.model import PlacedBy, Project
from corral.ops import projects
from corral.ops.journal import record_failure
from corral.ops.observe import sight
from corral.ops.placement import place_project
from corral.ops.requests import check_name
from corral.ops.results import ApplyResult
from corral.ops.session import Session
from corral.ops.source import ProjectSource


@dataclass(frozen=True, slots=True)
class ArchiveTemplate:
    """A template an import supplies from its archive (not registered): the
    kernel and initrd of a direct-boot template, for hosts whose flattened run
    copy needs no template disk. Satisfies :class:`~corral.backends.base.TemplateLike`."""

    name: str
    kind: str
    disk: Path | None
    kernel: Path | None
    initrd: Path | None
    format: str | None
    virtual_size: int | None
    cmdline: str | None
    sha256: dict[str, str]
    disk_boots: bool = False
    os: str | None = None
    packages: tuple[str, ...] = ()
    rootfs: Path | None = None  # never: export refuses a container's host


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What ``import`` did: the project's name and file, each template's fate
    (``verified``, ``registered``, ``from the archive``) and the build's result."""

    project: str
    archive: Path
    project_file: Path
    templates: dict[str, str]
    applied: ApplyResult

    def as_json(self) -> dict[str, object]:
        return {"project": self.project, "archive": str(self.archive),
                "project_file": str(self.project_file), "templates": self.templates,
                "applied": self.applied.as_json()}


def import_project(
    session: Session, project: str, directory: Path, *, new_name: str | None = None,
    service_host: str | None = None, replace: bool = False,
) -> ImportResult:
    """Recreate archived project ``project`` from ``directory`` (see the module)."""
    check_name("project", project)
    name = new_name or project
    check_name("project", name)
    if service_host is not None:
        session.backend(service_host)  # NotFoundError naming the configured ones
    directory = directory.absolute()
    folder, tarball = directory / project, directory / f"{project}.tar.gz"
    with tempfile.TemporaryDirectory(prefix=".corral-import-", dir=directory) as scratch:
        try:
            ready = _prepare(session, project, name, directory, Path(scratch), service_host,
                             replace)
        except CorralError as error:  # refused before the build: logged as a failed import
            record_failure(session, name, "import", str(directory / project), error)
            raise

        def stage(model: Project) -> None:
            if model.name != name:
                raise ConflictError(f"{ready.main} makes project {model.name}, not {name}")
            _stage_volumes(session, ready.root, ready.manifest, model, ready.templates,
                           service_host, Path(scratch))

        supplied = {t: v for t, v in ready.templates.items() if isinstance(v, ArchiveTemplate)}
        applied = projects.build(session, ProjectSource.from_path(ready.main),
                                 supplied=supplied, operation="import", prepare=stage)
    source = folder if ready.root == folder else tarball
    return ImportResult(name, source, ready.main, ready.fates, applied)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What the build of an import needs: the archive's root and manifest, the
    templates as the build uses them and what became of each, the main file."""

    root: Path
    manifest: Manifest
    templates: dict[str, TemplateLike]
    fates: dict[str, str]
    main: Path


def _prepare(
    session: Session, project: str, name: str, directory: Path, scratch: Path,
    service_host: str | None, replace: bool,
) -> _Prepared:
    """Everything before the build: the archive found and checked, the project's
    files edited, an existing project refused (or removed with ``replace``), the
    templates verified or registered, the files written."""
    folder, tarball = directory / project, directory / f"{project}.tar.gz"
    if (folder / "manifest.json").exists():
        root = folder
    elif tarball.exists():
        root = archive_files.unpack(tarball, scratch / "unpacked")
    else:
        raise NotFoundError(f"no archive of project {project} in {directory} "
                            f"(neither {folder}/ nor {tarball.name})")
    manifest = _checked_manifest(session, root, project)
    texts = _edited_files(session, root, manifest, name, service_host)
    target = directory / f"{name}.project"
    if target.exists() and not replace:
        raise ConflictError(f"{target} exists already",
                            hint="--replace overwrites its files, or choose another --as")
    exists = _exists(session, name)
    if exists and not replace:
        raise ConflictError(f"project '{name}' exists already",
                            hint="--replace removes it first, or import under another "
                            "name with --as")
    chosen = _choose_templates(session, manifest)  # refuses a different one, changes nothing
    if exists:
        _remove(session, name)
    templates, fates = _templates(session, root, chosen)
    main = _write_files(target, manifest.project_files.main, texts)
    return _Prepared(root, manifest, templates, fates, main)


# ---------------------------------------------------------------- checks
def _checked_manifest(session: Session, root: Path, project: str) -> Manifest:
    manifest = read_manifest(root)
    if manifest.project != project:
        raise ConflictError(f"{root}: the archive holds project {manifest.project}, "
                            f"not {project}")
    if manifest.standalone_host is not None:
        raise ConflictError(f"{root} is the standalone archive of one VM "
                            f"({manifest.standalone_host}), for virsh define; it is not "
                            "imported", hint="export the whole project to import it")
    entries = list(manifest.all_files())
    with session.reporter.progress("checking the archive", len(entries)) as bar:
        for entry in entries:
            verify_file(root, entry)
            bar.advance(entry.path)
    return manifest


def _exists(session: Session, name: str) -> bool:
    """Whether libvirt or the state database knows a project ``name``."""
    seen = sight(session, name).project
    store = session.store
    return bool(seen.hosts or seen.switches or seen.orphan_disks or any(
        seen.data_disks.values())) or (store is not None and store.get_project(name) is not None)


def _remove(session: Session, name: str) -> None:
    """``--replace``: the existing project goes first, as ``corral remove`` does it."""
    session.reporter.note(f"removing the existing project {name} (--replace)")
    removed = projects.remove(session, name)
    if removed.partial:
        raise ConflictError(f"project '{name}' could not be removed whole; nothing was "
                            "imported", hint=f"corral remove -p {name}, then import again")


def _edited_files(
    session: Session, root: Path, manifest: Manifest, name: str, service_host: str | None
) -> dict[str, str]:
    """The project's files by relative path, the main one made to say ``project
    NAME`` and to place every host the file places on ``service_host``; what
    cannot be edited safely is refused, saying which line to change."""
    texts = {
        relative: inside(root, entry.path).read_text()
        for relative, entry in manifest.project_files.files.items()
    }
    main = manifest.project_files.main
    text = texts[main]
    model = Project.model_validate(manifest.model)
    if service_host is not None:
        default = session.site.defaults.service_host
        moved = sorted(
            (h for h in model.hosts.values()
             if h.placed_by is PlacedBy.FILE and h.service_host != service_host),
            key=lambda h: (h.origin.line, h.origin.column) if h.origin else (0, 0),
            reverse=True,  # bottom first: a line added below leaves the positions above
        )
        for host in moved:
            origin = host.origin
            if origin is None or PurePosixPath(origin.file).name != PurePosixPath(main).name:
                raise ConflictError(
                    f"host {host.name} is placed on {host.service_host} by "
                    f"{origin.file if origin else 'a plugin'}, which import does not edit",
                    hint="import without --service-host, or change its service_host there")
            edit = set_host_key(text, main, host.name, "service_host", service_host,
                                at=(origin.line, origin.column),
                                current=host.service_host or "", default=default)
            if edit.text is None:
                raise ConflictError(f"cannot place host {host.name} on {service_host}: "
                                    f"{edit.instruction}")
            text = edit.text
    if name != manifest.project:
        edit = set_project_name(text, main, name)
        if edit.text is None:
            raise ConflictError(f"cannot rename project {manifest.project} to {name}: "
                                f"{edit.instruction}")
        text = edit.text
    texts[main] = text
    return texts


def _write_files(target: Path, main: str, texts: dict[str, str]) -> Path:
    """Write the project's files under ``target``; the main file's path."""
    for relative, text in texts.items():
        path = target.joinpath(*PurePosixPath(relative).parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return target / main


# ---------------------------------------------------------------- templates
def _choose_templates(
    session: Session, manifest: Manifest
) -> dict[str, tuple[str, ArchivedTemplate, TemplateLike | None]]:
    """For each template of the archive: ``verified`` (a registered one whose
    sha256s match the archive's record, its files hashed again), ``registered``
    (absent, its disk in the archive) or ``from the archive`` (absent, a
    flattened archive). A registered template that differs is refused, naming
    it. Changes nothing."""
    chosen: dict[str, tuple[str, ArchivedTemplate, TemplateLike | None]] = {}
    registry = session.registry
    present = set(registry.names())
    for name, archived in sorted(manifest.templates.items()):
        if name in present:
            template = registry.get(name)
            differ = sorted(f for f, digest in archived.sha256.items()
                            if template.sha256.get(f) != digest)
            if differ:
                raise ConflictError(
                    f"template {name} here differs from the archive's: "
                    + ", ".join(f"{f} has sha256 {template.sha256.get(f)}, the archive's "
                                f"{archived.sha256[f]}" for f in differ),
                    hint="import under a site whose template matches, or register the "
                    "archive's under another name and edit the project file")
            registry.verify(name)  # its files still hold what its manifest records
            chosen[name] = ("verified", archived, template)
        elif archived.disk_file is not None and archived.disk_file in archived.files:
            chosen[name] = ("registered", archived, None)
        else:
            chosen[name] = ("from the archive", archived, None)
    return chosen


def _templates(
    session: Session, root: Path,
    chosen: dict[str, tuple[str, ArchivedTemplate, TemplateLike | None]],
) -> tuple[dict[str, TemplateLike], dict[str, str]]:
    """Each template as the build uses it (registering those to register), and
    what became of it."""
    found: dict[str, TemplateLike] = {}
    for name, (fate, archived, template) in chosen.items():
        if template is not None:
            found[name] = template
        elif fate == "registered":
            found[name] = _register(session, root, archived)
        else:
            found[name] = _from_archive(root, archived)
    return found, {name: fate for name, (fate, _, _) in chosen.items()}


def _file(root: Path, archived: ArchivedTemplate, name: str | None) -> Path | None:
    if name is None or name not in archived.files:
        return None
    return inside(root, archived.files[name].path)


def _register(session: Session, root: Path, archived: ArchivedTemplate) -> TemplateLike:
    template = session.registry.add(
        archived.name, _file(root, archived, archived.disk_file),
        kernel=_file(root, archived, archived.kernel_file),
        initrd=_file(root, archived, archived.initrd_file),
        cmdline=archived.cmdline, disk_boots=archived.disk_boots,
        os_name=archived.os, release=archived.release, packages=archived.packages,
    )
    session.reporter.note(f"template {archived.name} registered from the archive")
    return template


def _from_archive(root: Path, archived: ArchivedTemplate) -> ArchiveTemplate:
    return ArchiveTemplate(
        name=archived.name, kind=archived.kind, disk=None,
        kernel=_file(root, archived, archived.kernel_file),
        initrd=_file(root, archived, archived.initrd_file),
        format=archived.format, virtual_size=archived.virtual_size,
        cmdline=archived.cmdline, sha256=dict(archived.sha256),
        disk_boots=archived.disk_boots, os=archived.os, packages=archived.packages,
    )


# ---------------------------------------------------------------- volumes
def _stage_volumes(
    session: Session, root: Path, manifest: Manifest, model: Project,
    templates: dict[str, TemplateLike], service_host: str | None, scratch: Path,
) -> None:
    """Write every host's run copy and extra disks into its pool on the service host
    it goes to; on failure what was written goes again (it was this import's)."""
    if set(model.hosts) != set(manifest.hosts):
        raise ConflictError(f"the project file of the archive makes hosts "
                            f"{sorted(model.hosts)}, its manifest has {sorted(manifest.hosts)}")
    placed = place_project(session, model, sight(session, model.name)).project
    written: list[tuple[str, str]] = []
    volumes = [v for h in manifest.hosts.values() for v in h.volumes if v.kind != "seed"]
    try:
        with session.reporter.progress(f"writing the volumes of {model.name}",
                                       len(volumes)) as bar:
            for name in sorted(manifest.hosts):
                host = placed.hosts[name]
                where = service_host or host.placed_on
                backend = session.backend(where)
                template = templates[host.template or ""]
                written.append((where, name))
                for volume in manifest.hosts[name].volumes:
                    if volume.kind == "seed":
                        continue  # made anew by the build, for the project's name
                    source = _prepared(root, volume, template, backend, scratch)
                    backend.receive_volume(
                        model.name, name, StoragePlace.of(host), source.stat().st_size,
                        _chunks(source), disk=volume.disk if volume.kind == "data" else None,
                    )
                    bar.advance(f"{name}: {PurePosixPath(volume.file.path).name} on {where}")
    except BaseException:
        for where, name in written:
            try:
                session.backend(where).delete_volumes(model.name, name)
            except CorralError as error:
                session.warn(f"volumes of {model.name}.{name} written on {where} are left: "
                             f"{error.message}")
        raise


def _prepared(
    root: Path, volume: ArchivedVolume, template: TemplateLike, backend: Backend,
    scratch: Path,
) -> Path:
    """The local file to upload for ``volume``: as archived, or (an overlay) a copy
    whose header names the template as the target service host holds it."""
    path = inside(root, volume.file.path)
    if volume.kind != "disk" or volume.flattened:
        return path
    base = backend.template_disk(template) or str(template.disk)
    copy = scratch / f"{volume.file.sha256[:16]}.qcow2"
    with path.open("rb") as reader, copy.open("wb") as writer:
        for chunk in iter(lambda: reader.read(CHUNK), b""):
            writer.write(chunk)
    qemuimg.rebase_unsafe(copy, base, template.format or "raw")
    return copy


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as reader:
        yield from iter(lambda: reader.read(CHUNK), b"")

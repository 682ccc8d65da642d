"""``corral export``: a project (or one VM) as an archive other sites can import.

An archive is the directory ``DIR/PROJECT/`` (``-z``: the same tree packed
into ``DIR/PROJECT.tar.gz``) holding ``manifest.json``
(:mod:`corral.images.archive_manifest`), the project file and its includes,
each host's domain XML, its volumes (run copy, extra disks, seed ISO) and the
templates the run copies are overlays on. With ``flatten`` every run copy is
converted into a standalone qcow2 here (from the downloaded overlay and the
registry's template) and no template disk is archived.

Volumes are read through the service host's API (``virStorageVolDownload``),
so remote service hosts export like this machine, and hashed as they arrive.
A running host is paused (``virDomainSuspend``) while its own volumes are
read and resumed at once; the result says for how long. Hosts are exported
one after the other, so each host's disks are consistent in themselves; the
hosts of a project are not frozen at one instant together. A suspended host
(its memory saved on the service host) is refused: the saved memory is not
part of an archive.

``host`` (``-h``) exports one VM standalone: its flattened disk, extra disks,
seed, kernel and initrd (direct boot) and a domain XML naming those files
where they were written, for ``virsh define`` without Corral
(:mod:`corral.images.standalone_xml`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from lxml import etree

import corral
from corral.backends.base import Backend
from corral.errors import ConflictError, CorralError, NotFoundError
from corral.images import archive_files
from corral.images.archive_manifest import (
    FORMAT_VERSION,
    ArchivedFile,
    ArchivedHost,
    ArchivedTemplate,
    ArchivedVolume,
    Manifest,
    ProjectFiles,
    archived,
    write_manifest,
)
from corral.images.registry import Template
from corral.images.standalone_xml import standalone_xml
from corral.model import Host, Project, Virt
from corral.ops.journal import project_lock, recorded, recorded_project
from corral.ops.observe import Sighting, sight
from corral.ops.reporting import Progress
from corral.ops.requests import check_name
from corral.ops.session import Session
from corral.ops.source import ProjectSource
from corral.plan import ObservedHost
from corral.state.texts import ProjectTexts

LIVE = frozenset({"running", "paused"})


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What ``export`` wrote: the archive (directory or ``.tar.gz``), its size, the
    hosts, how long each running one was paused, and the warnings."""

    project: str
    path: Path
    size: int
    flattened: bool
    hosts: tuple[str, ...]
    paused: dict[str, float] = field(default_factory=dict)
    standalone: str | None = None  # the host of a single-VM archive
    warnings: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {"project": self.project, "path": str(self.path), "size": self.size,
                "flattened": self.flattened, "hosts": list(self.hosts),
                "paused_s": self.paused, "standalone": self.standalone,
                "warnings": list(self.warnings)}


def export_project(
    session: Session, project: str, directory: Path, *, compress: bool = False,
    flatten: bool = False, host: str | None = None,
) -> ExportResult:
    """Write project ``project`` (or its one ``host``) as an archive into ``directory``.

    Refused before anything is written: a project Corral has no record of, a
    host without a domain, a suspended host, an ``lvm`` host, a container (an
    ``lxc`` host, or one on a rootfs template), a service host that does not
    answer, an archive that exists already.
    """
    check_name("project", project)
    if host is not None:
        check_name("host", host)
        if compress:
            raise ConflictError("-z cannot pack a single VM's archive: its domain XML names "
                                "its files where they are written", hint="leave out -z")
    mark = session.warning_mark()
    directory = directory.absolute()
    name = f"{project}-{host}" if host else project
    final = directory / (f"{name}.tar.gz" if compress else name)
    if final.exists():
        raise ConflictError(f"{final} exists already", hint="remove it or choose another -d")
    if not directory.is_dir():
        raise NotFoundError(f"directory {directory} does not exist")
    with (
        project_lock(session, project, "export", target=str(final)),
        recorded(session, project, "export", str(final)) as entry,
    ):
        model, files = _recorded(session, project)
        chosen = _chosen(model, host)
        _refuse_containers(session, model, chosen)
        sighting = sight(session, project)
        _refuse_unexportable(sighting, model, chosen)
        staging = directory / f".{name}.partial-{secrets.token_hex(4)}"
        staging.mkdir(mode=0o755)
        try:
            manifest = _write(session, sighting, model, files, chosen, staging,
                              flatten=flatten or host is not None,
                              standalone=final if host else None)
            write_manifest(staging, manifest)
            if compress:
                archive_files.pack(staging, final)
                archive_files.remove_tree(staging)
            else:
                staging.rename(final)
        except BaseException:
            archive_files.remove_tree(staging)
            raise
        paused = {h.name: h.paused_s for h in manifest.hosts.values() if h.paused_s is not None}
        entry.detail = f"{final} ({'flattened' if manifest.flattened else 'overlays'})"
    return ExportResult(project, final, _size(final), manifest.flattened, tuple(chosen),
                        paused, host, session.warnings_since(mark))


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---------------------------------------------------------------- what is exported
def _recorded(session: Session, project: str) -> tuple[Project, dict[str, str]]:
    """The project as last applied (its model) and its files (relative path -> text)."""
    record = recorded_project(session, project)
    if record is None:
        raise NotFoundError(f"project '{project}' is not recorded in the state database",
                            hint="export works on a project brought up here (corral up FILE)")
    model = Project.model_validate(json.loads(record.model_json))
    store = session.store
    text = ProjectTexts(store).get(project) if store is not None else None
    if text is not None:
        return model, {PurePosixPath(text.name).name: text.text}
    return model, project_files(Path(record.source_path))


def project_files(main: Path) -> dict[str, str]:
    """The text of ``main`` and of every file it includes, by path relative to
    ``main``'s directory, the main file first. An include outside that directory
    is refused: the archive could not place it."""
    source = ProjectSource.from_path(main)
    base = main.parent.absolute()
    found: dict[str, str] = {main.name: source.text}

    @dataclass(frozen=True)
    class Collecting(ProjectSource):
        def locate(self, target: Path) -> Path:
            located = ProjectSource.locate(self, target).absolute()
            try:
                relative = located.relative_to(base)
            except ValueError:
                raise ConflictError(
                    f"{main}: include {target} lies outside {base}; an archive holds the "
                    "project's directory only", hint="move the included file beside it"
                ) from None
            if ".." in relative.parts:
                raise ConflictError(f"{main}: include {target} leaves {base}")
            found[relative.as_posix()] = located.read_text()
            return located

    Collecting(source.text, source.name, source.base_dir, source.path).document()
    return found


def _chosen(model: Project, host: str | None) -> list[str]:
    if host is None:
        return sorted(model.hosts)
    if host not in model.hosts:
        raise NotFoundError(f"project '{model.name}' has no host '{host}'",
                            hint="known hosts: " + ", ".join(sorted(model.hosts)))
    return [host]


def _refuse_unexportable(sighting: Sighting, model: Project, chosen: list[str]) -> None:
    for service_host, reason in sorted(sighting.unreachable.items()):
        raise NotFoundError(f"service host {service_host} did not answer ({reason}); "
                            f"project {model.name} cannot be exported whole")
    for name in chosen:
        host = model.hosts[name]
        seen = sighting.domain(name)
        if seen is None:
            raise NotFoundError(f"host {name} of project {model.name} has no domain",
                                hint="build it first (corral up), or export after "
                                "removing it from the file")
        if seen.state == "suspended":
            raise ConflictError(f"host {name} is suspended: its memory is saved on "
                                f"{seen.service_host}, which an archive does not carry",
                                hint=f"corral vm restore {model.name}.{name}, or stop it")
        if host.lvm:
            raise ConflictError(f"host {name} keeps its disks on LVM; export reads directory "
                                "pools only")
        if host.template is None:
            raise ConflictError(f"host {name} has no template")


def _refuse_containers(session: Session, model: Project, chosen: list[str]) -> None:
    """An ``lxc`` host (a container, on a rootfs template) is refused: its root
    is a directory on its service host, and an archive carries storage volumes
    read through libvirt, which that directory is not."""
    registered = set(session.registry.names())
    for name in chosen:
        host = model.hosts[name]
        rootfs = host.template in registered and (
            session.registry.get(host.template or "").kind == "rootfs")
        if host.virt is Virt.LXC or rootfs:
            what = f"uses rootfs template {host.template}" if rootfs else "is an lxc host"
            raise ConflictError(
                f"host {name} of project {model.name} {what}: a container's root "
                "filesystem is a directory on its service host, and export carries only "
                "storage volumes", hint="a container is made again from its template and "
                "seed by 'corral up'; export the project without it")


# ---------------------------------------------------------------- writing
def _write(
    session: Session, sighting: Sighting, model: Project, files: dict[str, str],
    chosen: list[str], staging: Path, *, flatten: bool, standalone: Path | None,
) -> Manifest:
    project_entries = {}
    for relative, text in files.items():
        path = staging / "project" / Path(*PurePosixPath(relative).parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        project_entries[relative] = archived(staging, path)
    used = sorted({model.hosts[h].template or "" for h in chosen})
    templates = {t: session.registry.get(t) for t in used}
    archived_templates = {
        t: _archive_template(staging, template, disk=not flatten)
        for t, template in templates.items()
    }
    hosts: dict[str, ArchivedHost] = {}
    total = sum(len(_volumes_of(sighting, h)) for h in chosen)
    with session.reporter.progress(f"exporting {model.name}", total) as bar:
        for name in chosen:
            hosts[name] = _export_host(
                session, sighting, model.hosts[name], templates[model.hosts[name].template or ""],
                staging, flatten=flatten, bar=bar,
            )
    if standalone is not None:
        host = chosen[0]
        hosts[host] = hosts[host].model_copy(update={"standalone_xml": _write_standalone(
            staging, standalone, model, hosts[host], archived_templates)})
    return Manifest(
        format_version=FORMAT_VERSION, project=model.name, corral_version=corral.__version__,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), flattened=flatten,
        consistency="paused", project_files=ProjectFiles(
            main=next(iter(files)), files=project_entries),
        model=model.model_dump(mode="json"), hosts=hosts, templates=archived_templates,
        standalone_host=chosen[0] if standalone is not None else None,
    )


def _archive_template(staging: Path, template: Template, *, disk: bool) -> ArchivedTemplate:
    """The template's record, with its files copied in (the disk only when ``disk``:
    a flattened archive needs only a direct-boot template's kernel and initrd)."""
    if template.kind == "rootfs":  # refused before anything was read
        raise ConflictError(f"template {template.name} is a root filesystem, which export "
                            "does not carry")
    entries: dict[str, ArchivedFile] = {}
    wanted = [p for p in (template.kernel, template.initrd) if p is not None]
    if disk and template.disk is not None:
        wanted.insert(0, template.disk)
    for source in wanted:
        target = staging / "templates" / template.name / source.name
        digest = archive_files.copy_checked(source, target, template.sha256[source.name],
                                            f"template {template.name}")
        entries[source.name] = archived(staging, target, digest)
    return ArchivedTemplate(
        name=template.name, kind=template.kind, format=template.format,
        virtual_size=template.virtual_size, cmdline=template.cmdline,
        disk_boots=template.disk_boots, os=template.os, release=template.release,
        packages=template.packages,
        disk_file=template.disk.name if template.disk else None,
        kernel_file=template.kernel.name if template.kernel else None,
        initrd_file=template.initrd.name if template.initrd else None,
        sha256={k: v for k, v in template.sha256.items()}, files=entries,
    )


def _volumes_of(sighting: Sighting, host: str) -> list[tuple[str, str, str | None, int | None,
                                                            str]]:
    """``(kind, path, disk, capacity, volume name)`` of the host's volumes."""
    seen = sighting.domain(host)
    if seen is None:
        return []
    observed = sighting.raw[seen.service_host]
    return [(v.kind, v.path, v.disk, v.capacity, v.name) for v in observed.volumes
            if v.host == host and v.kind in ("disk", "data", "seed")]


def _export_host(
    session: Session, sighting: Sighting, host: Host, template: Template, staging: Path,
    *, flatten: bool, bar: Progress,
) -> ArchivedHost:
    seen = sighting.domain(host.name)
    assert seen is not None
    backend = session.backend(seen.service_host)
    folder = staging / "hosts" / host.name
    folder.mkdir(parents=True)
    xml_path = folder / "domain.xml"
    xml_path.write_text(backend.describe(seen.domain, inactive=True))
    volumes = _volumes_of(sighting, host.name)
    if not any(kind == "disk" for kind, *_ in volumes):
        raise NotFoundError(f"host {host.name} has no run copy on {seen.service_host}")
    downloaded: list[tuple[str, Path, str, str | None, int | None]] = []
    with tempfile.TemporaryDirectory(prefix="corral-export-", dir=staging) as scratch:
        with _paused(session, seen) as clock:
            for kind, path, disk, capacity, volume in volumes:
                overlay = kind == "disk" and flatten
                target = (Path(scratch) / volume) if overlay else folder / volume
                digest = _download(backend, path, target)
                downloaded.append((kind, target, digest, disk, capacity))
                bar.advance(f"{host.name}: {volume}")
        paused_s = clock.seconds
        entries = []
        for kind, target, digest, disk, capacity in downloaded:
            fmt = "raw" if kind == "seed" else "qcow2"
            if kind == "disk" and flatten:
                flat = folder / target.name
                if template.disk is None or template.format is None:
                    raise ConflictError(f"template {template.name} has no disk to flatten "
                                        f"host {host.name}'s run copy onto")
                archive_files.flatten(target, template.disk, template.format, flat)
                entries.append(ArchivedVolume(kind="disk", file=archived(staging, flat),
                                              format="qcow2", capacity=capacity,
                                              template=template.name, flattened=True))
                continue
            entries.append(ArchivedVolume.model_validate({
                "kind": kind, "file": archived(staging, target, digest), "format": fmt,
                "capacity": capacity, "disk": disk,
                "template": template.name if kind == "disk" else None,
            }))
    return ArchivedHost(name=host.name, service_host=seen.service_host, state=seen.state,
                        domain_xml=archived(staging, xml_path), volumes=tuple(entries),
                        paused_s=paused_s)


def _download(backend: Backend, path: str, target: Path) -> str:
    """Read the volume at ``path`` through the backend into ``target``; its sha256."""
    digest = hashlib.sha256()
    with target.open("wb") as writer:
        def take(chunk: bytes) -> None:
            digest.update(chunk)
            writer.write(chunk)

        backend.read_volume(path, take)
    return digest.hexdigest()


@dataclass
class _Clock:
    seconds: float | None = None


class _paused:
    """Pause a running domain for the body and resume it after (a paused one stays
    paused; a stopped one is left alone); ``seconds`` says how long it was paused."""

    def __init__(self, session: Session, seen: ObservedHost) -> None:
        self.session, self.seen, self.clock = session, seen, _Clock()
        self.began = 0.0

    def __enter__(self) -> _Clock:
        if self.seen.state == "running":
            self.session.backend(self.seen.service_host).pause(self.seen.domain)
            self.began = time.monotonic()
        return self.clock

    def __exit__(self, *_exc: object) -> None:
        if self.seen.state != "running":
            return
        self.clock.seconds = round(time.monotonic() - self.began, 3)
        try:
            self.session.backend(self.seen.service_host).resume(self.seen.domain)
        except CorralError as error:
            self.session.warn(f"host {self.seen.name} stays paused: {error.message}; "
                              f"resume it with corral vm resume")


def _write_standalone(
    staging: Path, final: Path, model: Project, host: ArchivedHost,
    templates: dict[str, ArchivedTemplate],
) -> ArchivedFile:
    """The domain XML of a single-VM archive, naming its files under ``final``."""
    folder = f"hosts/{host.name}"
    files: dict[str, tuple[Path, str]] = {}
    for volume in host.volumes:
        files[PurePosixPath(volume.file.path).name] = (final / volume.file.path, volume.format)
    xml = (staging / host.domain_xml.path).read_text()
    root = etree.fromstring(xml.encode())
    template = templates[model.hosts[host.name].template or ""]
    for tag, file in (("os/kernel", template.kernel_file), ("os/initrd", template.initrd_file)):
        element = root.find(tag)
        if element is not None and element.text and file and file in template.files:
            files[Path(element.text).name] = (final / template.files[file].path, "raw")
    rewritten = standalone_xml(xml, f"{model.name}-{host.name}-standalone", files)
    path = staging / folder / "standalone.xml"
    path.write_text(rewritten)
    return archived(staging, path)


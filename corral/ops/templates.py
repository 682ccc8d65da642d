"""Template operations: register, list, remove (refused while in use), build, and
the copies remote service hosts hold."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from corral.backends.base import TemplateCopy
from corral.errors import CorralError, InvalidRequest, NotFoundError
from corral.images.installers import INSTALLERS
from corral.images.registry import Template
from corral.ops.journal import recorded
from corral.ops.observe import observe_everywhere
from corral.ops.session import Session
from corral.ops.source import SourceLike, as_source

BUILDERS = ("tiny", "debian")


@dataclass(frozen=True)
class TemplateListing:
    """A registered template and the projects whose hosts stand on it now."""

    template: Template
    used_by: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {**self.template.model_dump(mode="json"), "used_by": list(self.used_by)}


@dataclass(frozen=True)
class DebianOptions:
    """What ``corral template build debian`` was asked for."""

    release: str = "bookworm"
    packages: tuple[str, ...] = ()
    size: str = "2G"

    @classmethod
    def given(cls, release: str | None, packages: Sequence[str] | None,
              size: str | None) -> DebianOptions | None:
        """The options a caller gave (None for each not given), or None for none."""
        if release is None and packages is None and size is None:
            return None
        return cls(release=release or cls.release, packages=tuple(packages or ()),
                   size=size or cls.size)


def add_template(
    session: Session,
    name: str,
    disk: Path | None,
    kernel: Path | None = None,
    initrd: Path | None = None,
    cmdline: str | None = None,
    *,
    disk_boots: bool = False,
) -> Template:
    with recorded(session, "", "template add", name):
        return session.registry.add(
            name, disk, kernel=kernel, initrd=initrd, cmdline=cmdline, disk_boots=disk_boots
        )


def list_templates(session: Session) -> list[TemplateListing]:
    """Every template, with the projects using it (one survey of the service hosts;
    one that does not answer is a warning and its projects are left out)."""
    found = session.registry.list()
    if not found:
        return []
    raw = observe_everywhere(session, None)
    users: dict[str, set[str]] = {}
    for seen in raw.values():
        for domain in seen.domains:
            if domain.template:
                users.setdefault(domain.template, set()).add(domain.project)
    return [TemplateListing(t, tuple(sorted(users.get(t.name, ())))) for t in found]


def users_of(session: Session, name: str) -> list[str]:
    """Domains (on any service host) whose run copy stands on this template."""
    raw = observe_everywhere(session, None)
    return sorted(
        f"{d.project}.{d.host}" for seen in raw.values() for d in seen.domains
        if d.template == name
    )


def remove_template(session: Session, name: str) -> None:
    with recorded(session, "", "template remove", name):
        session.registry.get(name)
        session.registry.remove(name, in_use_by=users_of(session, name))


def build_template(session: Session, builder: str, name: str | None = None,
                   debian: DebianOptions | None = None,
                   for_host: tuple[SourceLike, str] | None = None) -> Template:
    """Build a template with one of the built-in builders and register it as
    ``name`` (default: ``tiny``, or ``debian-RELEASE``).

    ``for_host`` (a project and one of its hosts: ``--from-project FILE
    --host H``) builds the template that host names, with the host's
    ``packages`` baked in, so its guests have them without reaching a mirror.
    """
    if builder not in BUILDERS:
        _refuse_builder(builder)
    if builder != "debian" and (debian is not None or for_host is not None):
        raise InvalidRequest(f"release, packages, size and --from-project are for the "
                             f"debian builder, not '{builder}'")
    options = debian or DebianOptions()
    if for_host is not None:
        name, options = _for_host(session, *for_host, name, options)
    target = name or (builder if builder == "tiny" else f"debian-{options.release}")
    session.registry.check_free(target)
    work = session.site.paths.templates.parent / "build"
    work.mkdir(parents=True, exist_ok=True)
    with (
        recorded(session, "", "template build", target),
        tempfile.TemporaryDirectory(dir=work) as tmp,
    ):
        if builder == "tiny":
            return _build_tiny(session, target, Path(tmp))
        return _build_debian(session, target, Path(tmp), options)


def _refuse_builder(builder: str) -> None:
    """An unknown builder; a system whose installer this site lacks says so."""
    for installer in INSTALLERS:
        if builder in installer.systems:
            installer.require(f"building a {builder} template")
    raise NotFoundError(
        f"no template builder '{builder}'", hint=f"builders: {', '.join(BUILDERS)}"
    )


def _for_host(session: Session, source: SourceLike, host_name: str, name: str | None,
              options: DebianOptions) -> tuple[str, DebianOptions]:
    """The template name and options that build ``host_name``'s template: the
    name its ``template`` key gives (unless ``name`` overrides it) and its
    ``packages`` added to those asked for."""
    from corral.ops.projects import load_source

    loaded = as_source(source)
    project = load_source(loaded, session.site)
    host = project.hosts.get(host_name)
    if host is None:
        raise NotFoundError(f"{loaded.name}: project '{project.name}' has no host "
                            f"'{host_name}'", hint=f"its hosts: {', '.join(sorted(project.hosts))}")
    target = name or host.template
    if target is None:
        raise InvalidRequest(f"{loaded.name}: host {host_name} names no template",
                             hint="give --name, or `template NAME` in the host")
    if host.template is not None and target != host.template:
        session.reporter.note(f"host {host_name} uses template {host.template}; this one is "
                              f"registered as {target}")
    packages = (*host.packages, *options.packages)
    return target, replace(options, packages=tuple(dict.fromkeys(packages)))


def _build_tiny(session: Session, name: str, work: Path) -> Template:
    from corral.images.tiny_builder import build_tiny

    session.reporter.note("building the tiny template from Debian packages")
    image = build_tiny(work)
    return session.registry.add(
        name, image.disk, kernel=image.kernel, initrd=image.initrd, cmdline=image.cmdline,
        move=True,
    )


def _build_debian(session: Session, name: str, work: Path, options: DebianOptions) -> Template:
    from corral.images import debian_builder

    packages = debian_builder.check_packages(options.packages)
    debian_builder.check_size(options.size)
    listed = f" with {', '.join(packages)}" if packages else ""
    session.reporter.note(f"building template {name}: Debian {options.release}{listed}")
    with session.reporter.progress(f"building {name}", debian_builder.STEPS) as bar:
        image = debian_builder.build_debian(
            work, release=options.release, packages=packages, size=options.size,
            advance=bar.advance)
    return session.registry.add(
        name, image.disk, kernel=image.kernel, initrd=image.initrd, cmdline=image.cmdline,
        move=True, os_name="debian", release=image.release, packages=image.packages,
    )


@dataclass(frozen=True)
class TemplateCopies:
    """The template copies each remote service host holds (``corral template copies``).

    ``problems`` are the copies found to differ from the registry's sha256
    when checked (each deleted, so its next use uploads it again);
    ``unreachable`` maps a service host that could not be asked to why.
    """

    copies: tuple[TemplateCopy, ...]
    problems: tuple[str, ...] = ()
    unreachable: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {"copies": [c.as_json() for c in self.copies], "problems": list(self.problems),
                "unreachable": dict(self.unreachable)}


def template_copies(
    session: Session, service_host: str | None = None, *, verify: bool = False
) -> TemplateCopies:
    """List every service host's template copies; ``verify`` reads each copy of a
    registered template back and compares it with the registry's sha256."""
    names = [service_host] if service_host else session.service_host_names()
    templates = session.registry.list() if verify else []

    def ask(name: str) -> tuple[list[TemplateCopy], list[str], str | None]:
        try:
            backend = session.backend(name)
            problems = [p for t in templates for p in backend.check_template_copies(t)]
            return backend.template_copies(), problems, None
        except CorralError as error:
            return [], [], error.message

    found = session.parallel(ask, names)
    return TemplateCopies(
        copies=tuple(c for copies, _, _ in found for c in copies),
        problems=tuple(p for _, problems, _ in found for p in problems),
        unreachable={n: why for n, (_, _, why) in zip(names, found, strict=True) if why},
    )

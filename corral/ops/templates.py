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
from corral.model import Virt
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
    """What ``corral template build debian`` was asked for.

    ``rootfs`` builds an ``lxc`` host's root filesystem instead of a VM's
    disk and kernel; ``size`` is the VM's root disk (None: the builder's
    default), which a container's root, a directory, does not have.
    """

    release: str = "bookworm"
    packages: tuple[str, ...] = ()
    size: str | None = None
    rootfs: bool = False

    def __post_init__(self) -> None:
        if self.rootfs and self.size is not None:
            raise InvalidRequest(
                "--size is for a VM's root disk; a rootfs template (a container's root "
                "filesystem, a directory) has no size", hint="leave out --size or --rootfs")

    @classmethod
    def given(cls, release: str | None, packages: Sequence[str] | None,
              size: str | None, rootfs: bool = False) -> DebianOptions | None:
        """The options a caller gave (None for each not given), or None for none."""
        if release is None and packages is None and size is None and not rootfs:
            return None
        return cls(release=release or cls.release, packages=tuple(packages or ()),
                   size=size, rootfs=rootfs)

    def default_name(self) -> str:
        """``debian-RELEASE``, or ``debian-RELEASE-rootfs`` for a root filesystem."""
        return f"debian-{self.release}-rootfs" if self.rootfs else f"debian-{self.release}"


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
    ``name`` (default: ``tiny``, ``debian-RELEASE``, or ``debian-RELEASE-rootfs``
    for a container's root filesystem).

    ``for_host`` (a project and one of its hosts: ``--from-project FILE
    --host H``) builds the template that host names, with the host's
    ``packages`` baked in, so its guests have them without reaching a mirror;
    an ``lxc`` host's is a root filesystem.
    """
    if builder not in BUILDERS:
        _refuse_builder(builder)
    if builder != "debian" and (debian is not None or for_host is not None):
        raise InvalidRequest(f"release, packages, size, rootfs and --from-project are for "
                             f"the debian builder, not '{builder}'")
    options = debian or DebianOptions()
    if for_host is not None:
        name, options = _for_host(session, *for_host, name, options)
    target = name or (builder if builder == "tiny" else options.default_name())
    session.registry.check_free(target)
    work = session.site.paths.templates.parent / "build"
    work.mkdir(parents=True, exist_ok=True)
    with (
        recorded(session, "", "template build", target),
        tempfile.TemporaryDirectory(dir=work) as tmp,
    ):
        if builder == "tiny":
            return _build_tiny(session, target, Path(tmp))
        if options.rootfs:
            return _build_rootfs(session, target, Path(tmp), options)
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
    name its ``template`` key gives (unless ``name`` overrides it), its
    ``packages`` added to those asked for, and a root filesystem for an ``lxc``
    host (a container's root; any other host boots a disk or kernel)."""
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
    container = host.virt is Virt.LXC
    if options.rootfs and not container:
        raise InvalidRequest(f"{loaded.name}: host {host_name} is a {host.virt.value} host; "
                             "a rootfs template is for lxc hosts",
                             hint="leave out --rootfs: the host's template is a VM's")
    if container and options.size is not None:
        raise InvalidRequest(f"{loaded.name}: host {host_name} is an lxc host, whose "
                             "template is a root filesystem: it has no size",
                             hint="leave out --size")
    if container and not options.rootfs:
        session.reporter.note(f"host {host_name} is an lxc host: building a root filesystem "
                              "for its container (as --rootfs)")
    packages = (*host.packages, *options.packages)
    return target, replace(options, packages=tuple(dict.fromkeys(packages)),
                           rootfs=container)


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
    size = debian_builder.check_size(options.size or debian_builder.DEFAULT_SIZE)
    listed = f" with {', '.join(packages)}" if packages else ""
    session.reporter.note(f"building template {name}: Debian {options.release}{listed}")
    with session.reporter.progress(f"building {name}", debian_builder.STEPS) as bar:
        image = debian_builder.build_debian(
            work, release=options.release, packages=packages, size=size,
            advance=bar.advance)
    return session.registry.add(
        name, image.disk, kernel=image.kernel, initrd=image.initrd, cmdline=image.cmdline,
        move=True, os_name="debian", release=image.release, packages=image.packages,
    )


def _build_rootfs(session: Session, name: str, work: Path, options: DebianOptions) -> Template:
    from corral.images import debian_builder

    packages = debian_builder.check_packages(options.packages)
    listed = f" with {', '.join(packages)}" if packages else ""
    session.reporter.note(f"building template {name}: a container's root filesystem, "
                          f"Debian {options.release}{listed}")
    with session.reporter.progress(f"building {name}", debian_builder.ROOTFS_STEPS) as bar:
        made = debian_builder.build_debian_rootfs(
            work, release=options.release, packages=packages, advance=bar.advance)
    return session.registry.add(
        name, None, rootfs=made.rootfs, move=True, os_name="debian", release=made.release,
        packages=made.packages,
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

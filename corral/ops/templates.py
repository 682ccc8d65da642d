"""Template operations: register, list, remove (refused while in use), build, and
the copies remote service hosts hold."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from corral.backends.base import TemplateCopy
from corral.errors import CorralError, NotFoundError
from corral.images.registry import Template
from corral.ops.journal import recorded
from corral.ops.observe import observe_everywhere
from corral.ops.session import Session

BUILDERS = ("tiny",)


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


def list_templates(session: Session) -> list[Template]:
    return session.registry.list()


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


def build_template(session: Session, name: str) -> Template:
    """Build a template with one of the built-in builders and register it."""
    if name not in BUILDERS:
        raise NotFoundError(
            f"no template builder '{name}'", hint=f"builders: {', '.join(BUILDERS)}"
        )
    from corral.images.tiny_builder import build_tiny

    session.reporter.note("building the tiny template from Debian packages")
    work = session.site.paths.templates.parent / "build"
    work.mkdir(parents=True, exist_ok=True)
    with (
        recorded(session, "", "template build", name),
        tempfile.TemporaryDirectory(dir=work) as tmp,
    ):
        image = build_tiny(Path(tmp))
        return session.registry.add(
            name, image.disk, kernel=image.kernel, initrd=image.initrd, cmdline=image.cmdline,
            move=True,
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

"""Template operations: register, list, remove (refused while in use), build."""

from __future__ import annotations

import tempfile
from pathlib import Path

from corral.errors import NotFoundError
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

"""Packages and templates: a template built for a project's host, packages for a
system whose installer this site lacks, and builders that do not exist here.

Building and booting the Debian template for real is the integration test's
(tests/integration/test_debian_template.py); these checks stop before anything
is built."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from corral.errors import ConflictError, InvalidRequest, NotFoundError, SourceErrors
from corral.ops import projects
from corral.ops.session import Session
from corral.ops.templates import DebianOptions, build_template

PROJECT = """\
global { project pk }
host web {
    template web-debian
    qemu
    wait none
    packages { nginx curl }
}
host bare { qemu; wait none }
"""


def test_a_builder_for_another_system_is_refused_with_its_installer(session: Session) -> None:
    with pytest.raises(InvalidRequest, match=r"building a rocky template needs the dnf "
                       r"installer .* not available on this site"):
        build_template(session, "rocky")
    with pytest.raises(NotFoundError, match="no template builder 'plan9'"):
        build_template(session, "plan9")


def test_from_project_needs_the_debian_builder_and_a_real_host(
        session: Session, tmp_path: Path) -> None:
    path = tmp_path / "pk.corral"
    path.write_text(PROJECT)
    with pytest.raises(InvalidRequest, match="are for the debian builder, not 'tiny'"):
        build_template(session, "tiny", for_host=(path, "web"))
    with pytest.raises(NotFoundError, match=r"pk.corral: project 'pk' has no host 'db'") as e:
        build_template(session, "debian", for_host=(path, "db"))
    assert e.value.hint == "its hosts: bare, web"
    # The site's default template is `base`, which is registered: the name is taken.
    with pytest.raises(ConflictError, match="template base already exists"):
        build_template(session, "debian", for_host=(path, "bare"))


def test_from_project_takes_the_hosts_template_name_and_packages(
        session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the builder is asked for: the name the host's ``template`` gives and
    its packages before the ones given on the command line (the build itself is
    the integration test's)."""
    from corral.ops import templates

    path = tmp_path / "pk.corral"
    path.write_text(PROJECT)
    asked: list[tuple[str, DebianOptions]] = []

    def record(_session: Session, name: str, _work: Path, options: DebianOptions) -> None:
        asked.append((name, options))

    monkeypatch.setattr(templates, "_build_debian", record)
    build_template(session, "debian", debian=DebianOptions(packages=("htop", "curl")),
                   for_host=(path, "web"))
    assert asked == [("web-debian", DebianOptions(packages=("nginx", "curl", "htop")))]


def test_packages_for_a_system_without_an_installer_here_are_refused_by_up(
        session: Session, tmp_path: Path) -> None:
    image = tmp_path / "rocky.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    session.registry.add("rocky9", image, os_name="rocky", release="9")
    path = tmp_path / "pk.corral"
    path.write_text(PROJECT.replace("web-debian", "rocky9"))
    with pytest.raises(SourceErrors) as raised:
        projects.up(session, path)
    message = raised.value.message
    assert "pk.corral:2:1: error: host web: installing packages on template rocky9 (rocky) " \
        "needs the dnf installer" in message, message
    assert projects.list_projects(session) == []  # nothing was made

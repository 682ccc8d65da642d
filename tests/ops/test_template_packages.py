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
from corral.ops.reporting import SilentReporter
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


CONTAINERS = """\
global { project ck }
host box {
    template box-rootfs
    lxc
    packages { nginx }
}
host vm { template web-debian; qemu; wait none }
"""


def _recorded_builds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, DebianOptions]]:
    """Stand-ins for both Debian builds, recording which ran for what."""
    from corral.ops import templates

    asked: list[tuple[str, str, DebianOptions]] = []

    def builder(kind: str):
        def record(_session: Session, name: str, _work: Path, options: DebianOptions) -> None:
            asked.append((kind, name, options))
        return record

    monkeypatch.setattr(templates, "_build_debian", builder("vm"))
    monkeypatch.setattr(templates, "_build_rootfs", builder("rootfs"))
    return asked


def test_an_lxc_hosts_template_is_built_as_a_root_filesystem(
        session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ck.corral"
    path.write_text(CONTAINERS)
    asked = _recorded_builds(monkeypatch)
    build_template(session, "debian", debian=DebianOptions(packages=("htop",)),
                   for_host=(path, "box"))
    build_template(session, "debian", for_host=(path, "vm"))
    assert asked == [
        ("rootfs", "box-rootfs", DebianOptions(packages=("nginx", "htop"), rootfs=True)),
        ("vm", "web-debian", DebianOptions()),
    ]
    assert isinstance(session.reporter, SilentReporter)
    assert "host box is an lxc host: building a root filesystem for its container " \
        "(as --rootfs)" in session.reporter.notes


def test_rootfs_and_size_go_to_the_hosts_they_fit(
        session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ck.corral"
    path.write_text(CONTAINERS)
    asked = _recorded_builds(monkeypatch)
    with pytest.raises(InvalidRequest, match="host box is an lxc host, whose template is a "
                       "root filesystem: it has no size"):
        build_template(session, "debian", debian=DebianOptions(size="3G"),
                       for_host=(path, "box"))
    with pytest.raises(InvalidRequest, match="host vm is a qemu host; a rootfs template is "
                       "for lxc hosts"):
        build_template(session, "debian", debian=DebianOptions(rootfs=True),
                       for_host=(path, "vm"))
    with pytest.raises(InvalidRequest, match="--size is for a VM's root disk"):
        DebianOptions.given(None, None, "3G", rootfs=True)
    with pytest.raises(InvalidRequest, match="rootfs and --from-project are for the debian"):
        build_template(session, "tiny", debian=DebianOptions(rootfs=True))
    assert asked == []


def test_a_rootfs_is_named_after_its_release_by_default(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _recorded_builds(monkeypatch)
    build_template(session, "debian", debian=DebianOptions.given(None, None, None, True))
    build_template(session, "debian", debian=DebianOptions.given("trixie", None, None, True))
    build_template(session, "debian")
    assert [(kind, name) for kind, name, _ in asked] == [
        ("rootfs", "debian-bookworm-rootfs"), ("rootfs", "debian-trixie-rootfs"),
        ("vm", "debian-bookworm")]

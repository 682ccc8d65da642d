"""Where a service host runs no containers, ``up`` refuses an ``lxc`` host before
building anything, at the host's position and with the reason; a container on
a disk template, and a VM on a root filesystem template, are refused too."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from corral.errors import SourceErrors
from corral.ops import projects
from corral.ops.source import ProjectSource
from corral.ops.status import status


@pytest.fixture
def rootfs(session, tmp_path: Path) -> str:
    tree = tmp_path / "tree"
    (tree / "sbin").mkdir(parents=True)
    (tree / "sbin/init").write_text("#!/bin/sh\n")
    tar = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-c", "-f", str(tar), "-C", str(tree), "."], check=True)
    session.registry.add("ct", None, rootfs=tar)
    return "ct"


def _up_refused(session, tmp_path: Path, host: str) -> list[str]:
    path = tmp_path / "box.corral"
    path.write_text("global { project box }\nswitch lan { }\n" + host)
    with pytest.raises(SourceErrors) as caught:
        projects.up(session, ProjectSource.from_path(path))
    assert status(session, "box") == []  # nothing was built
    return [f"{d.span.line}:{d.span.column}: {d.message}" for d in caught.value.diagnostics]


def test_an_lxc_host_where_no_containers_run_is_refused_with_the_reason(
    session, tmp_path: Path, rootfs: str
) -> None:
    found = _up_refused(session, tmp_path, "host c1 {\n    lxc\n    template ct\n"
                        "    network eth0 { switch lan }\n}\n")
    assert found == [
        "3:1: host c1: cannot run lxc hosts: service host 'local' is not this machine's "
        "qemu:///system: a container's root is a directory Corral makes here, and libvirt "
        "cannot copy a directory to another host"
    ]


def test_a_template_of_the_wrong_kind_is_refused_for_either_host(
    session, tmp_path: Path, rootfs: str
) -> None:
    found = _up_refused(session, tmp_path, "host c1 {\n    lxc\n    template base\n"
                        "    network eth0 { switch lan }\n}\n"
                        "host vm {\n    qemu\n    template ct\n}\n")
    assert "3:1: host c1: template base is a disk image, and an lxc host needs a root " \
           "filesystem template" in found
    assert "8:1: host vm: template ct is a container's root filesystem, which a VM cannot " \
           "boot" in found

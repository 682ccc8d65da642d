"""Export refuses a container: its root filesystem (a copy of a rootfs template,
a directory on its service host) is no storage volume an archive carries.

Exporting and importing VMs for real is the integration test's
(tests/integration/test_export_import.py); these refusals come before libvirt
is asked anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from corral.errors import ConflictError
from corral.ops import archive
from corral.ops.projects import load_source
from corral.ops.session import Session
from corral.ops.source import as_source

PROJECT = """\
global {{ project ck }}
host box {{
    template {template}
    {flag}
}}
"""


def _export(session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            template: str, flag: str) -> None:
    """Export project ck as recorded from PROJECT (the state database is not asked)."""
    path = tmp_path / "ck.corral"
    path.write_text(PROJECT.format(template=template, flag=flag))
    model = load_source(as_source(path), session.site)
    monkeypatch.setattr(archive, "_recorded",
                        lambda _session, _project: (model, {path.name: path.read_text()}))
    out = tmp_path / "out"
    out.mkdir()
    try:
        archive.export_project(session, "ck", out)
    finally:
        assert list(out.iterdir()) == []  # nothing was written


def test_an_lxc_host_is_refused_by_name(
        session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConflictError) as refused:
        _export(session, tmp_path, monkeypatch, "base", "lxc")
    assert refused.value.message == (
        "host box of project ck is an lxc host: a container's root filesystem is a "
        "directory on its service host, and export carries only storage volumes")


def test_a_host_on_a_rootfs_template_is_refused_by_name(
        session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "tree"
    (tree / "sbin").mkdir(parents=True)
    (tree / "sbin/init").write_text("#!/bin/sh\n")
    tar = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", str(tree), "-cf", str(tar), "."], check=True)
    session.registry.add("ct", None, rootfs=tar)
    with pytest.raises(ConflictError, match="host box of project ck uses rootfs template ct: "
                       "a container's root filesystem is a directory"):
        _export(session, tmp_path, monkeypatch, "ct", "qemu")

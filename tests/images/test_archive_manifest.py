"""The archive manifest: written and read back, foreign versions and damaged or
escaping files refused with the file named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.errors import ConfigError, ConflictError, NotFoundError
from corral.images.archive_manifest import (
    FORMAT_VERSION,
    ArchivedHost,
    ArchivedVolume,
    Manifest,
    ProjectFiles,
    archived,
    inside,
    read_manifest,
    verify_file,
    write_manifest,
)


def _manifest(root: Path) -> Manifest:
    (root / "project").mkdir()
    main = root / "project" / "lab.corral"
    main.write_text("global { project lab }\n")
    disk = root / "web.qcow2"
    disk.write_bytes(b"QFI\xfb" + bytes(1000))
    xml = root / "domain.xml"
    xml.write_text("<domain/>")
    return Manifest(
        format_version=FORMAT_VERSION, project="lab", corral_version="0", created_at="now",
        flattened=True, consistency="paused",
        project_files=ProjectFiles(main="lab.corral", files={"lab.corral": archived(root, main)}),
        model={"name": "lab"}, templates={},
        hosts={"web": ArchivedHost(
            name="web", service_host="local", state="running", domain_xml=archived(root, xml),
            volumes=(ArchivedVolume(kind="disk", file=archived(root, disk), format="qcow2",
                                    flattened=True),))},
    )


def test_written_manifest_reads_back_and_every_file_verifies(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    write_manifest(tmp_path, manifest)
    again = read_manifest(tmp_path)
    assert again == manifest
    assert [verify_file(tmp_path, f).name for f in again.all_files()] == [
        "lab.corral", "domain.xml", "web.qcow2"]


def test_a_changed_file_is_refused_naming_it(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    with (tmp_path / "web.qcow2").open("r+b") as disk:
        disk.seek(500)
        disk.write(b"x")
    entry = manifest.hosts["web"].volumes[0].file
    with pytest.raises(ConflictError, match=f"archive file {tmp_path}/web.qcow2: sha256"):
        verify_file(tmp_path, entry)
    (tmp_path / "web.qcow2").write_bytes(b"short")
    with pytest.raises(ConflictError, match="has 5 bytes"):
        verify_file(tmp_path, entry)
    (tmp_path / "web.qcow2").unlink()
    with pytest.raises(NotFoundError, match="is missing"):
        verify_file(tmp_path, entry)


def test_foreign_versions_missing_manifests_and_escaping_paths_are_refused(
        tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no complete archive"):
        read_manifest(tmp_path)
    data = _manifest(tmp_path).model_dump(mode="json")
    (tmp_path / "manifest.json").write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(ConfigError, match="archive format version 99"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({**data, "flattened": "maybe"}))
    with pytest.raises(ConfigError, match=r"manifest\.json: flattened"):
        read_manifest(tmp_path)
    for bad in ("../etc/passwd", "/etc/passwd", ""):
        with pytest.raises(ConfigError, match="leaves the archive"):
            inside(tmp_path, bad)

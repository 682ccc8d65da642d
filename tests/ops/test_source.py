"""A project given as text with a name: errors carry the name, includes resolve under base_dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.config import SiteConfig
from corral.errors import SourceErrors
from corral.ops.projects import load_source, validate_source
from corral.ops.source import ProjectSource


def test_text_with_a_name_and_includes_under_base_dir(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "node.mln").write_text("superclass node {\n    memory 192M\n}\n")
    (tmp_path / "common.mln").write_text("#include lib/node.mln\n")
    text = "global {\n    project req\n}\n#include common.mln\nhost a { superclass node }\n"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # includes must not resolve against the working directory
    source = ProjectSource(text, "request.corral", tmp_path)
    project = load_source(source, SiteConfig())
    assert project.name == "req" and project.hosts["a"].memory_mib == 192
    assert source.origin == "request.corral"


def test_errors_name_the_given_name_and_the_included_file(tmp_path: Path) -> None:
    (tmp_path / "bad.mln").write_text("host b {\n    vcpus many\n}\n")
    text = "global { project req }\n#include bad.mln\nhost a {\n    memroy 1G\n}\n"
    errors = validate_source(ProjectSource(text, "upload.corral", tmp_path), SiteConfig())
    assert errors is not None
    where = sorted(f"{d.span.file}:{d.span.line}" for d in errors.diagnostics)
    assert where == ["bad.mln:2", "upload.corral:4"]


def test_missing_include_is_positioned_at_the_include(tmp_path: Path) -> None:
    text = "global { project req }\n#include nosuch.mln\n"
    with pytest.raises(SourceErrors) as caught:
        load_source(ProjectSource(text, "x.corral", tmp_path), SiteConfig())
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.span.file, diagnostic.span.line) == ("x.corral", 2)
    assert "nosuch.mln" in diagnostic.message


def test_from_path_names_the_path_as_given(tmp_path: Path) -> None:
    path = tmp_path / "p.corral"
    path.write_bytes(b"global { project p }\nhost a { memory \xff }\n")
    with pytest.raises(SourceErrors) as caught:
        ProjectSource.from_path(path)
    assert str(caught.value.diagnostics[0].span) == f"{path}:2:17"
    with pytest.raises(SourceErrors, match="cannot read project file"):
        ProjectSource.from_path(tmp_path / "absent.corral")
    path.write_text("global { project p }\nhost a { }\n")
    source = ProjectSource.from_path(path)
    assert source.origin == str(path.resolve()) and source.base_dir == tmp_path


def test_yaml_is_chosen_by_the_name(tmp_path: Path) -> None:
    text = "global:\n  project: y\nhost:\n  a:\n    memory: 256M\n"
    project = load_source(ProjectSource(text, "p.yaml", tmp_path), SiteConfig())
    assert project.hosts["a"].memory_mib == 256

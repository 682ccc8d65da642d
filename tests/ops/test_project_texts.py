"""A project's current file: the text kept in the state database (applied as text,
or saved by the portal's editor) before the file on this machine it was applied
from, and forgotten when that file is applied again or the project is removed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from corral.errors import InvalidRequest, ProjectLocked, SourceErrors
from corral.ops import projects
from corral.ops.edit_file import edit_recorded
from corral.ops.journal import project_lock
from corral.ops.session import Session
from corral.ops.source import ProjectSource
from corral.state.texts import ProjectTexts


def _as_text(path: Path, memory: str | None = None) -> ProjectSource:
    text = path.read_text()
    if memory is not None:
        text = text.replace("memory 128M", f"memory {memory}")
    return ProjectSource(text, "lab.corral", Path("/"), local_files=False)


def test_the_current_file_is_the_saved_text_until_a_file_is_applied_again(
    session: Session, lab_file: Callable[..., Path]
) -> None:
    path = lab_file()
    projects.build(session, path)
    assert projects.recorded_source(session, "lab").path == path
    saved = projects.save_source(session, "lab", _as_text(path, "192M"))
    assert saved.saved_by == session.identity.name
    current = projects.recorded_source(session, "lab")
    assert current.path is None and not current.local_files and "memory 192M" in current.text
    assert not projects.plan_source(session, current).empty
    projects.build(session, path)  # the file on this machine is the project's again
    assert projects.recorded_source(session, "lab").path == path
    assert ProjectTexts(session.require_store()).get("lab") is None


def test_a_project_applied_as_text_keeps_its_text_until_removed(
    session: Session, lab_file: Callable[..., Path]
) -> None:
    sent = _as_text(lab_file())
    projects.build(session, sent)
    assert projects.recorded_source(session, "lab").text == sent.text
    projects.remove(session, "lab")
    assert ProjectTexts(session.require_store()).get("lab") is None
    with pytest.raises(Exception, match="not found"):
        projects.recorded_source(session, "lab")


def test_only_a_file_that_loads_and_names_the_project_is_saved(
    session: Session, lab_file: Callable[..., Path]
) -> None:
    path = lab_file()
    projects.build(session, path)
    with pytest.raises(SourceErrors) as bad:
        projects.save_source(session, "lab", _as_text(path, "lots"))
    assert all(d.span.file == "lab.corral" and d.span.line > 1 for d in bad.value.diagnostics)
    with pytest.raises(SourceErrors, match="declares project 'lab', not 'other'"):
        projects.save_source(session, "other", _as_text(path))
    with pytest.raises(InvalidRequest):
        projects.save_source(session, "../x", _as_text(path))
    assert ProjectTexts(session.require_store()).get("lab") is None


def test_a_save_or_a_key_edit_while_the_project_is_locked_is_refused_naming_the_holder(
    session: Session, lab_file: Callable[..., Path]
) -> None:
    """Another operation holds the lock (an ``up`` that records the file it applied
    when it ends): the save is refused at once rather than lost or kept waiting."""
    path = lab_file()
    projects.build(session, path)
    with project_lock(session, "lab", "upgrade"):
        with pytest.raises(ProjectLocked, match=r"project 'lab' is locked by .*upgrade"):
            projects.save_source(session, "lab", _as_text(path, "192M"))
        with pytest.raises(ProjectLocked, match=r"project 'lab' is locked by .*upgrade"):
            edit_recorded(session, "lab", "host.web.memory", ["160M"])
    assert projects.recorded_source(session, "lab").path == path  # nothing was saved
    edit_recorded(session, "lab", "host.web.memory", ["160M"])  # the lock is free again
    assert "memory 160M" in projects.recorded_source(session, "lab").text

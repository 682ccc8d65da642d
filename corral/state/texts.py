"""Project files kept as text in the state database (``project_texts``).

A project applied from a file on the server's machine has that file; one
sent to the server as text, or edited in the web portal, has only its text,
kept here with who saved it and when. Plain storage: who may save is
:mod:`corral.ops.access`'s decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete
from sqlalchemy.orm import Session

from corral.state.db import ProjectTextRow
from corral.state.store import StateStore, aware, now


@dataclass(frozen=True, slots=True)
class ProjectText:
    """A project's file as last saved: the name its errors carry, its text, by whom, when."""

    project: str
    name: str
    text: str
    saved_by: str
    saved_at: datetime


class ProjectTexts:
    """The ``project_texts`` table of ``store``."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def save(self, project: str, name: str, text: str, saved_by: str) -> ProjectText:
        moment = now()
        values = {"project": project, "name": name, "text": text, "saved_by": saved_by,
                  "saved_at": moment}
        statement = self._store.insert(ProjectTextRow).values(**values).on_conflict_do_update(
            index_elements=[ProjectTextRow.project],
            set_={k: v for k, v in values.items() if k != "project"})
        with self._store.guard(), Session(self._store.engine) as session, session.begin():
            session.execute(statement)
        return ProjectText(project, name, text, saved_by, aware(moment))

    def get(self, project: str) -> ProjectText | None:
        with self._store.guard(), Session(self._store.engine) as session:
            row = session.get(ProjectTextRow, project)
            if row is None:
                return None
            return ProjectText(row.project, row.name, row.text, row.saved_by, aware(row.saved_at))

    def forget(self, project: str) -> bool:
        statement = delete(ProjectTextRow).where(ProjectTextRow.project == project)
        with self._store.guard(), Session(self._store.engine) as session, session.begin():
            return bool(cast(CursorResult[Any], session.execute(statement)).rowcount)

"""The audit log: who asked for what, from where, and how it ended.

Rows of the state database, read back newest first by time, user and
count. Sending each entry to syslog as well is the job of
:mod:`corral.ops.audit`; this module only stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.state.db import AuditRow
from corral.state.store import StateStore, aware, now

RESULTS = ("ok", "refused", "error")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited request; ``result`` is ok, refused (not allowed) or error."""

    id: int
    at: datetime
    user: str
    source: str
    action: str
    target: str
    result: str
    detail: str

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id, "at": self.at.isoformat(), "user": self.user, "source": self.source,
            "action": self.action, "target": self.target, "result": self.result,
            "detail": self.detail,
        }


class AuditLog:
    """The ``audit_log`` table of the state database ``store``."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def append(
        self, user: str, source: str, action: str, target: str, result: str, detail: str = ""
    ) -> AuditEntry:
        if result not in RESULTS:
            raise ValueError(f"audit result '{result}' is not one of {', '.join(RESULTS)}")
        row = AuditRow(at=now(), user=user, source=source, action=action, target=target,
                       result=result, detail=detail)
        with (
            self._store.guard(),
            Session(self._store.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            session.add(row)
            session.flush()
            return _entry(row)

    def entries(
        self, *, since: datetime | None = None, user: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first, at or after ``since`` (UTC)."""
        query = select(AuditRow).order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit)
        if since is not None:
            query = query.where(AuditRow.at >= since.astimezone(UTC).replace(tzinfo=None))
        if user is not None:
            query = query.where(AuditRow.user == user)
        with self._store.guard(), Session(self._store.engine) as session:
            return [_entry(row) for row in session.scalars(query)]


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id, at=aware(row.at), user=row.user, source=row.source, action=row.action,
        target=row.target, result=row.result, detail=row.detail,
    )

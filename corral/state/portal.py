"""The web portal's rows: login sessions and failed logins.

Plain storage with no policy: how long a session lasts and how many failures
are too many is decided in :mod:`corral.server.portal`. A session is found by
the SHA-256 of its cookie, joined with its user's row in the same query, so a
removed user or a changed password ends every session at once, on every
server sharing the database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from corral.state.db import LoginFailureRow, PortalSessionRow, UserRow
from corral.state.store import StateStore, aware, now


@dataclass(frozen=True, slots=True)
class SessionUser:
    """Whose a live session is, and until when."""

    user: str
    admin: bool
    expires_at: datetime


def password_mark(password_hash: str) -> str:
    """What a session remembers of its user's password hash: the hash's SHA-256."""
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()


class PortalSessions:
    """The ``portal_sessions`` and ``login_failures`` tables of ``store``."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    # -- sessions -----------------------------------------------------------------

    def add(self, token_hash: str, user: str, password_hash: str, lifetime: timedelta) -> None:
        """Record a new session of ``user``; expired sessions of anyone go at the same time."""
        moment = now()
        with self._store.guard(), Session(self._store.engine) as session, session.begin():
            session.execute(delete(PortalSessionRow).where(PortalSessionRow.expires_at <= moment))
            session.add(PortalSessionRow(
                token_hash=token_hash, user=user, password_mark=password_mark(password_hash),
                created_at=moment, expires_at=moment + lifetime))

    def find(self, token_hash: str) -> SessionUser | None:
        """The live session with this hash: not expired, its user still there with the
        password they logged in with; None otherwise."""
        query = select(PortalSessionRow, UserRow).join(
            UserRow, UserRow.name == PortalSessionRow.user
        ).where(PortalSessionRow.token_hash == token_hash, PortalSessionRow.expires_at > now())
        with self._store.guard(), Session(self._store.engine) as session:
            found = session.execute(query).first()
            if found is None:
                return None
            row, user = found
            if user.password_hash is None or password_mark(user.password_hash) != row.password_mark:
                return None
            return SessionUser(user.name, user.admin, aware(row.expires_at))

    def remove(self, token_hash: str) -> bool:
        statement = delete(PortalSessionRow).where(PortalSessionRow.token_hash == token_hash)
        with self._store.guard(), Session(self._store.engine) as session, session.begin():
            return bool(cast(CursorResult[Any], session.execute(statement)).rowcount)

    # -- failed logins --------------------------------------------------------------

    def add_failure(self, source: str, user: str, window: timedelta) -> None:
        """Count a failed login; failures older than ``window`` are dropped meanwhile."""
        moment = now()
        with self._store.guard(), Session(self._store.engine) as session, session.begin():
            session.execute(delete(LoginFailureRow).where(LoginFailureRow.at < moment - window))
            session.add(LoginFailureRow(at=moment, source=source[:100], user=user[:64]))

    def failures(self, source: str, user: str, window: timedelta) -> tuple[list[datetime],
                                                                         list[datetime]]:
        """The times of the failures within ``window``: from ``source``, and for ``user``."""
        since = now() - window
        by_source = select(LoginFailureRow.at).where(
            LoginFailureRow.source == source[:100], LoginFailureRow.at >= since)
        by_user = select(LoginFailureRow.at).where(
            LoginFailureRow.user == user[:64], LoginFailureRow.at >= since)
        with self._store.guard(), Session(self._store.engine) as session:
            return ([aware(t) for t in session.scalars(by_source)],
                    [aware(t) for t in session.scalars(by_user)])

    def clear_failures(self, user: str) -> None:
        """Forget ``user``'s failures: they logged in with the right password."""
        with self._store.guard(), Session(self._store.engine) as session, session.begin():
            session.execute(delete(LoginFailureRow).where(LoginFailureRow.user == user[:64]))

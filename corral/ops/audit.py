"""Recording who did what: the audit log in the state database, copied to syslog.

Every operation on users, tokens and shares runs inside :func:`audited`,
which records it as ``ok``, ``refused`` (not authenticated, not allowed, or
a project the identity may not see) or ``error``; the server wraps its
requests the same way. Each entry also goes to the local syslog (facility
authpriv, ident ``corral``) when ``/dev/log`` exists, so a copy outside the
database survives someone who can write to it; a missing or silent syslog
never fails the operation.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from logging.handlers import SysLogHandler

from corral.errors import Forbidden, HiddenProject, InvalidRequest, NotAuthenticated
from corral.ops.identity import Identity, require_admin
from corral.ops.session import Session
from corral.state.audit import AuditEntry, AuditLog

SYSLOG_ADDRESS = "/dev/log"
_RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(slots=True)
class Note:
    """The body of :func:`audited` may say what it did, for the entry's detail."""

    detail: str = ""


@contextmanager
def audited(session: Session, identity: Identity, action: str, target: str) -> Iterator[Note]:
    """Run the body and record how it ended; its exception propagates unchanged."""
    note = Note()
    try:
        yield note
    except HiddenProject as hidden:
        record(session, identity, action, target, "refused", hidden.reason)
        raise
    except (NotAuthenticated, Forbidden) as refused:
        record(session, identity, action, target, "refused", refused.message)
        raise
    except Exception as error:
        text = getattr(error, "message", None) or str(error) or type(error).__name__
        record(session, identity, action, target, "error", text)
        raise
    record(session, identity, action, target, "ok", note.detail)


def record(
    session: Session, identity: Identity, action: str, target: str, result: str,
    detail: str = "", *, syslog_address: str = SYSLOG_ADDRESS,
) -> AuditEntry:
    """Append one entry to the audit log and send it to syslog."""
    entry = AuditLog(session.require_store()).append(
        identity.name, identity.source, action, target, result, detail
    )
    to_syslog(entry, syslog_address)
    return entry


def entries(
    session: Session, identity: Identity, *, since: str | None = None, user: str | None = None,
    limit: int = 100, now: datetime | None = None,
) -> list[AuditEntry]:
    """The newest entries, newest first (for administrators); ``since`` is ISO 8601
    or relative (``1h``, ``2d``)."""
    require_admin(identity, "read the audit log")
    if limit < 1:
        raise InvalidRequest(f"limit {limit}: give at least 1")
    start = parse_since(since, now or datetime.now(UTC)) if since is not None else None
    return AuditLog(session.require_store()).entries(since=start, user=user, limit=limit)


def parse_since(text: str, now: datetime) -> datetime:
    """``30m``, ``1h``, ``2d``, ``1w`` before ``now``, or an ISO 8601 time (UTC if it
    names no zone); InvalidRequest otherwise."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative is not None:
        amount, unit = int(relative.group(1)), relative.group(2)
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(
            f"since '{text}': give a time (2026-05-01T12:00) or an age (30m, 1h, 2d, 1w)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def syslog_line(entry: AuditEntry) -> str:
    """One entry as the syslog message: ``key=value`` words, the detail last."""
    return (f"audit user={entry.user} source={entry.source} action={entry.action} "
            f"target={entry.target} result={entry.result} detail={entry.detail!r}")


class _QuietSysLogHandler(SysLogHandler):
    """A handler whose failures are silent: the entry is in the database already."""

    def handleError(self, record: logging.LogRecord) -> None:
        return


def to_syslog(entry: AuditEntry, address: str = SYSLOG_ADDRESS) -> bool:
    """Send ``entry`` to the syslog socket at ``address``; False when there is none."""
    if not os.path.exists(address):
        return False
    try:
        handler = _QuietSysLogHandler(address=address, facility=SysLogHandler.LOG_AUTHPRIV)
    except OSError:
        return False
    handler.ident = "corral: "
    level = logging.INFO if entry.result == "ok" else logging.WARNING
    try:
        handler.handle(logging.makeLogRecord(
            {"msg": syslog_line(entry), "levelno": level, "levelname": logging.getLevelName(level)}
        ))
    finally:
        handler.close()
    return True

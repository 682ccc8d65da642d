"""Failed portal logins, limited per source address and per user name.

Failures are rows of the state database (:mod:`corral.state.portal`), so
several servers on one database count the same guesses. After
:attr:`LoginLimit.failures` failures within :attr:`LoginLimit.window` from one
address, or for one user name, further attempts are refused (429, with
``Retry-After``) without their password being checked, until the oldest
counted failure is older than the window. A successful login clears its
user name's failures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from corral.ops.session import Session
from corral.state.portal import PortalSessions


@dataclass(frozen=True, slots=True)
class LoginLimit:
    failures: int = 5
    window: timedelta = timedelta(minutes=15)


def retry_after(session: Session, source: str, user: str, limit: LoginLimit,
                now: datetime | None = None) -> int | None:
    """Seconds until a login from ``source`` for ``user`` may be tried again; None
    when it may be tried now."""
    moment = now or datetime.now(UTC)
    waits = []
    for times in PortalSessions(session.require_store()).failures(source, user, limit.window):
        if len(times) >= limit.failures:
            times.sort()
            frees = times[len(times) - limit.failures] + limit.window
            waits.append(max(1, math.ceil((frees - moment).total_seconds())))
    return max(waits) if waits else None


def count_failure(session: Session, source: str, user: str, limit: LoginLimit) -> None:
    PortalSessions(session.require_store()).add_failure(source, user, limit.window)


def clear_failures(session: Session, user: str) -> None:
    PortalSessions(session.require_store()).clear_failures(user)

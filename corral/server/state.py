"""What one server process holds for its whole life, kept on its FastAPI app.

No global state: ``create_app`` makes one :class:`ServerState` and puts it
on ``app.state.corral``; routes reach it through their request. Two apps in
one process (tests do this) share nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import FastAPI, Request

from corral.config import SiteConfig
from corral.ops.identity import Identity
from corral.ops.reporting import Reporter
from corral.ops.session import BackendFactory, Session
from corral.ops.status import StatusReport, status_report
from corral.server.fresh import FreshReadings
from corral.server.identity import CredentialReader, bearer_token
from corral.server.jobs import DEFAULT_WORKERS, JobRunner, Liveness
from corral.server.live import LiveFeed
from corral.server.metrics import RequestMetrics
from corral.server.portal.limits import LoginLimit
from corral.server.portal.sessions import session_cookie
from corral.state.store import StateStore

# How old the status a request is given may be: requests within this of each
# other share one survey of the service hosts (see corral.server.fresh).
STATUS_MAX_AGE_S = 1.0
# How long after the last status request the reading is still kept young, so
# that a client polling at least this often is answered from memory.
STATUS_KEEP_YOUNG_S = 30.0


class SiteReader:
    """Reads the whole site's status for the reading requests share, as the site
    administrator.

    The readings share one session, its service host connections kept open
    from one reading to the next, also by readings that overlap (one begun
    after a change while another is under way): opening connections (and
    finding each one's backend) was a large part of a reading's cost, a new
    session also loses the CPU samples each backend keeps (so its first
    reading waits for two), and closing a connection can take longer than a
    reading. A reading in which a service host did not answer, or anything
    was warned, retires that session: the readings under way finish with it,
    it is closed after the last, and the next reading opens a new one.
    """

    def __init__(self, open_session: Callable[[], Session]) -> None:
        self._open_session = open_session
        self._changed = threading.Condition()
        self._current: _Shared | None = None
        self._reading = 0
        self._closed = False

    def read(self) -> StatusReport:
        with self._changed:
            if self._current is None:
                self._current = _Shared(self._open_session())
            shared = self._current
            shared.readers += 1
            self._reading += 1
        clean = False
        try:
            mark = shared.session.warning_mark()
            report = status_report(shared.session, None)
            clean = not report.silent and shared.session.warning_mark() == mark
            return report
        finally:
            with self._changed:
                shared.readers -= 1
                if (not clean or self._closed) and self._current is shared:
                    self._current = None
                done = shared.readers == 0 and self._current is not shared
                self._reading -= 1
                self._changed.notify_all()
            if done:
                shared.session.close()

    def close(self, timeout_s: float) -> bool:
        """Keep no session from now on, wait (up to ``timeout_s``) for readings under
        way to end, and close the kept one (the server is stopping, and no
        connection to a service host may outlive it); True when none was left
        reading."""
        with self._changed:
            self._closed = True
            settled = self._changed.wait_for(lambda: self._reading == 0, timeout_s)
            shared, self._current = self._current, None
        if shared is not None and shared.readers == 0:
            shared.session.close()
        return settled


@dataclass
class _Shared:
    """The session readings share, and how many are reading with it."""

    session: Session
    readers: int = 0


@dataclass
class ServerState:
    """The site, its state database (one engine for every request), the readers
    of credentials (the bearer token, then the portal's session cookie), the
    portal's failed-login limit, the job runner, the request metrics, the live
    feed of libvirt's changes (watching from the app's start to its end) and
    the site's status reading that requests share."""

    site: SiteConfig
    store: StateStore
    metrics: RequestMetrics = field(default_factory=RequestMetrics)
    credentials: list[CredentialReader] = field(
        default_factory=lambda: [bearer_token, session_cookie])
    login_limit: LoginLimit = field(default_factory=LoginLimit)
    backend_factory: BackendFactory | None = None
    job_workers: int = DEFAULT_WORKERS
    liveness: Liveness = field(default_factory=Liveness)
    status_max_age_s: float = STATUS_MAX_AGE_S
    status_keep_young_s: float = STATUS_KEEP_YOUNG_S
    jobs: JobRunner = field(init=False)
    live: LiveFeed = field(init=False)
    status: FreshReadings[StatusReport] = field(init=False)
    reader: SiteReader = field(init=False)

    def __post_init__(self) -> None:
        self.jobs = JobRunner(self.store, self.session, self.job_workers, self.liveness)
        self.reader = SiteReader(lambda: self.session(Identity.site_administrator()))
        self.status = FreshReadings(self.reader.read, self.status_max_age_s,
                                    self.status_max_age_s / 2,
                                    keep_young_s=self.status_keep_young_s)
        self.live = LiveFeed(self.site, on_change=self.status.changed)

    def site_status(self) -> StatusReport:
        """The whole site's status, at most ``status_max_age_s`` old (see
        :mod:`corral.server.fresh`); cut to a caller by
        :func:`~corral.ops.visible.visible_status`."""
        return self.status.get().value

    def session(self, identity: Identity, reporter: Reporter | None = None) -> Session:
        """An operations session for ``identity`` on the shared state database."""
        return Session(self.site, reporter, identity=identity, store=self.store,
                       backend_factory=self.backend_factory)


def server_state(app: FastAPI) -> ServerState:
    found = app.state.corral
    assert isinstance(found, ServerState)
    return found


def state_of(request: Request) -> ServerState:
    return server_state(request.app)

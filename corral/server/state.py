"""What one server process holds for its whole life, kept on its FastAPI app.

No global state: ``create_app`` makes one :class:`ServerState` and puts it
on ``app.state.corral``; routes reach it through their request. Two apps in
one process (tests do this) share nothing.
"""

from __future__ import annotations

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
    jobs: JobRunner = field(init=False)
    live: LiveFeed = field(init=False)
    status: FreshReadings[StatusReport] = field(init=False)

    def __post_init__(self) -> None:
        self.jobs = JobRunner(self.store, self.session, self.job_workers, self.liveness)
        self.status = FreshReadings(self._read_status, self.status_max_age_s,
                                    self.status_max_age_s / 2)
        self.live = LiveFeed(self.site, on_change=self.status.forget)

    def site_status(self) -> StatusReport:
        """The whole site's status, at most ``status_max_age_s`` old (see
        :mod:`corral.server.fresh`); cut to a caller by
        :func:`~corral.ops.visible.visible_status`."""
        return self.status.get().value

    def _read_status(self) -> StatusReport:
        with self.session(Identity.site_administrator()) as session:
            return status_report(session, None)

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

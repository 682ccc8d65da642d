"""One request's call: the caller's identity and an operations session made for it.

Routes take a :data:`Caller` (or :data:`MetricsCaller`) parameter: FastAPI
runs :func:`caller` first, which reads the credentials, refuses a request
without valid ones (401) or a metrics-only token (403, except on
``/metrics``), and opens the session every operation of the request uses,
closed when the request ends. The helpers here are the HTTP side of
authorisation and auditing; the decisions are :mod:`corral.ops.access`'s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from corral.errors import Forbidden, HiddenProject, NotAuthenticated
from corral.ops import audit
from corral.ops.access import authorize_action
from corral.ops.identity import Identity, require_full_scope
from corral.ops.session import Session
from corral.server.identity import anonymous, identify, source_of
from corral.server.jobs import Result, Work, job_json
from corral.server.state import ServerState, state_of


@dataclass
class Call:
    """The server, the caller and the session of one request."""

    server: ServerState
    session: Session
    identity: Identity

    @contextmanager
    def audited(self, action: str, target: str) -> Iterator[audit.Note]:
        """A changing request: recorded in the audit log however it ends; the
        status requests share is read again after it."""
        try:
            with audit.audited(self.session, self.identity, action, target) as note:
                yield note
        finally:
            self.server.status.forget()

    @contextmanager
    def refusals(self, action: str, target: str) -> Iterator[None]:
        """A reading request: recorded in the audit log only when it is refused."""
        try:
            yield
        except HiddenProject as hidden:
            audit.record(self.session, self.identity, action, target, "refused", hidden.reason)
            raise
        except (NotAuthenticated, Forbidden) as refused:
            audit.record(self.session, self.identity, action, target, "refused",
                         refused.message)
            raise

    def authorize(self, project: str, action: str) -> None:
        """:func:`~corral.ops.access.authorize_action`, a refusal audited."""
        with self.refusals(action, project):
            authorize_action(self.session, self.identity, project, action)

    def job(self, operation: str, target: str, work: Work) -> JSONResponse:
        """Start ``work`` as a job of the caller: 202 with the job and where to read it
        (:class:`~corral.server.models.JobAccepted`)."""
        status = self.server.status

        def then_read_again(session: Session) -> Result:
            try:
                return work(session)
            finally:
                status.forget()  # what the job changed shows in the next status

        job = self.server.jobs.submit(self.identity, operation, target, then_read_again)
        body = job_json(job)
        body["href"] = f"/api/v1/jobs/{job.id}"
        return JSONResponse(body, status_code=202, headers={"Location": body["href"]})


def _identified(request: Request, *, full: bool) -> Identity:
    server = state_of(request)
    with server.session(anonymous(source_of(request))) as probe:
        identity = identify(request, probe, server.credentials)
        if full:
            try:
                require_full_scope(identity)
            except Forbidden as refused:
                audit.record(probe, identity, "request", request.url.path[:200], "refused",
                             refused.message)
                raise
    return identity


async def _opened(request: Request, *, full: bool) -> Call:
    """The caller's session for the request. Its credentials are read on the event
    loop: reading them is one indexed query (and, at most once a minute, the
    token's last use), which costs less than the hop to a worker thread and back
    that every request would pay under load (``bench/server_load.py``)."""
    identity = _identified(request, full=full)
    server = state_of(request)
    return Call(server, server.session(identity), identity)


async def _close(call: Call) -> None:
    """Closing a session that connected to no service host costs nothing, so only
    one that did is closed on a worker thread: every hop between the event loop
    and a thread is a cost each request pays under load."""
    if call.session.connected:
        await run_in_threadpool(call.session.close)
    else:
        call.session.close()


async def caller(request: Request) -> AsyncIterator[Call]:
    """An authenticated caller with a full-scope credential."""
    call = await _opened(request, full=True)
    try:
        yield call
    finally:
        await _close(call)


async def metrics_caller(request: Request) -> AsyncIterator[Call]:
    """An authenticated caller of any scope (``/metrics`` decides further)."""
    call = await _opened(request, full=False)
    try:
        yield call
    finally:
        await _close(call)


@contextmanager
def call_on_thread(request: Request) -> Iterator[Call]:
    """What :func:`caller` gives, for code already on a worker thread (the
    console's websocket handshake)."""
    identity = _identified(request, full=True)
    server = state_of(request)
    with server.session(identity) as session:
        yield Call(server, session, identity)


Caller = Annotated[Call, Depends(caller)]
MetricsCaller = Annotated[Call, Depends(metrics_caller)]

"""The overview (``/``): the service hosts and every VM the user may see, kept live.

The rows are :func:`corral.ops.visible.visible_status`'s, exactly what
``GET /api/v1/status`` answers the same user. ``/overview/events`` streams
them again as server-sent events (the htmx SSE extension swaps them into the
tables) at every change the server's live feed reports and every few
seconds (:mod:`corral.server.portal.feed`), for as long as the session lasts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from corral.errors import CorralError
from corral.ops.access import visible_projects
from corral.ops.identity import Identity
from corral.ops.visible import visible_status
from corral.server.portal.feed import refreshes, sse
from corral.server.portal.guard import PortalCaller, may, portal_router, still_logged_in
from corral.server.portal.render import page, render
from corral.server.state import ServerState

router = portal_router()
log = logging.getLogger("corral.server.portal")


@dataclass(frozen=True)
class Rows:
    """The two tables' bodies, rendered."""

    hosts: str
    vms: str


def overview_rows(server: ServerState, identity: Identity) -> Rows:
    """The status the user may see, from the reading every viewer and ``GET
    /status`` share (one begun after the last change the live feed reported),
    rendered
    as both tables' rows."""
    with server.session(identity) as session:
        report = visible_status(session, site_reading=server.site_status)
        projects = sorted({r.project for r in report.rows})
        writable = {p for p in projects if may(session, p, "start")}
    read_at = datetime.now(UTC)
    return Rows(
        render("_hosts.html", hosts=report.service_hosts, read_at=read_at),
        render("_vms.html", rows=report.rows, writable=writable, read_at=read_at),
    )


@router.get("/")
async def overview(call: PortalCaller) -> Response:
    rows = await run_in_threadpool(overview_rows, call.server, call.identity)
    names = await run_in_threadpool(visible_projects, call.session, call.identity)
    return page("overview.html", me=call.identity, csrf=call.csrf, rows=rows, projects=names)


@router.get("/overview/events")
def overview_events(request: Request, call: PortalCaller) -> StreamingResponse:
    return StreamingResponse(_stream(call.server, request), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _stream(server: ServerState, request: Request) -> AsyncIterator[str]:
    """The rows now, then again at every refresh, while the session lives."""
    async with server.live.subscribe() as changes:
        ticks = refreshes(changes)
        while True:
            found = await run_in_threadpool(still_logged_in, server, request)
            if found is None:
                yield sse("ended", render("_ended.html"))
                return
            try:
                rows = await run_in_threadpool(overview_rows, server, found.identity)
            except CorralError as error:  # the state database failed: try again next time
                log.warning("overview of %s not read: %s", found.identity.name, error.message)
            else:
                yield sse("hosts", rows.hosts) + sse("vms", rows.vms)
            await anext(ticks)


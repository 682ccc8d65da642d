"""The audit log page (``/audit``): administrators only, newest first, filtered by
user and age. A user who asks is refused (403) and the refusal is audited, as
``GET /api/v1/audit`` does."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response
from starlette.concurrency import run_in_threadpool

from corral.ops import audit
from corral.server.portal.guard import PortalCaller, portal_router
from corral.server.portal.render import page
from corral.state.audit import AuditEntry

router = portal_router()
LIMIT = 200


@router.get("/audit")
async def audit_page(call: PortalCaller, user: Annotated[str, Query(max_length=64)] = "",
                     since: Annotated[str, Query(max_length=40)] = "") -> Response:
    def read() -> list[AuditEntry]:
        with call.refusals("audit", since or "*"):
            return audit.entries(call.session, call.identity, since=since.strip() or None,
                                 user=user.strip() or None, limit=LIMIT)

    entries = await run_in_threadpool(read)
    return page("audit.html", me=call.identity, csrf=call.csrf, entries=entries, user=user,
                since=since, limit=LIMIT)

"""The status route's express lane: ``GET /api/v1/status`` answered before FastAPI.

Under load the most requested route is the site's status (dashboards
polling, every portal page), and most of its cost was the framework around
it: routing, solving the route's dependencies, opening the request's
operations session. So this ASGI layer, in front of FastAPI's routing,
answers the plain request itself when it can: ``GET /api/v1/status`` with no
query, a bearer token, and a shared reading young enough to answer from
(:meth:`corral.server.fresh.FreshReadings.young`). It checks the token and
cuts the reading with the operations the route itself calls
(:func:`~corral.ops.tokens.valid_identity`,
:func:`~corral.ops.visible.site_report_for`), so the answer is the route's,
byte for byte.

Everything else goes on to the route, which answers and records it as it
always does: a request without a bearer token (the portal's cookie), with a
token the route would refuse (it is refused, and audited, there), a
metrics-only token, a query string, no young reading (the route waits for
one), or a database fault. The request counts in the metrics under the
route it stands for.

Callers who see the same projects are given the same cut of one reading,
so each cut is rendered to JSON once per reading (:class:`RenderedCuts`),
and only its ``age_s`` is written per request. The token and the projects a
caller sees are asked of the database through its memo
(:mod:`corral.state.memo`): under steady load most requests touch neither
the database nor the encoder.
"""

from __future__ import annotations

import json

from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.errors import CorralError
from corral.ops.identity import Scope as TokenScope
from corral.ops.status import StatusReport
from corral.ops.tokens import valid_identity
from corral.ops.visible import cut_to, projects_seen_by
from corral.server.fresh import Reading
from corral.server.identity import bearer_in
from corral.server.state import ServerState
from corral.state.accounts import Accounts


class StatusExpress:
    """ASGI middleware answering ``GET path`` (the status route, ``route``) from the
    shared reading of ``state`` when it can; see the module's text."""

    def __init__(self, app: ASGIApp, state: ServerState, path: str, route: BaseRoute) -> None:
        self.app = app
        self.state = state
        self.path = path
        self.route = route
        self.cuts = RenderedCuts()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["path"] == self.path
                and scope["method"] == "GET" and not scope.get("query_string")):
            answer = self._answer(scope)
            if answer is not None:
                scope["route"] = self.route
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope) -> Response | None:
        token = bearer_of(scope)
        if token is None:
            return None
        young = self.state.status.young()
        if young is None:
            return None
        client = scope.get("client")
        store = self.state.store
        try:
            identity = valid_identity(Accounts(store), token,
                                      client[0] if client else "unknown")
            if identity is None or identity.scope is not TokenScope.FULL:
                return None
            body = self.cuts.body(young, projects_seen_by(identity, store))
        except CorralError:
            return None
        return Response(body, media_type="application/json")


# How many different cuts of one reading are kept rendered (callers seeing
# different sets of projects); past it, the others are rendered per request.
CUTS_KEPT = 1024


class RenderedCuts:
    """The JSON answer of each cut of the latest reading, rendered once.

    A cut is named by the projects its caller sees (None: all of them, an
    administrator's). What is kept is the answer without its ``age_s``,
    which is written per request: the bytes are those
    ``JSONResponse(report.as_json())`` gives. A new reading drops the cuts of
    the one before. Used on the event loop only, so it takes no lock.
    """

    def __init__(self) -> None:
        self._reading: Reading[StatusReport] | None = None
        self._heads: dict[tuple[str, ...] | None, bytes] = {}

    def body(self, reading: Reading[StatusReport], seen: tuple[str, ...] | None) -> bytes:
        if reading is not self._reading:
            self._reading, self._heads = reading, {}
        head = self._heads.get(seen)
        if head is None:
            answer = cut_to(reading.value, seen).as_json()
            del answer["age_s"]
            head = _json(answer)[:-1]  # open: the age goes last
            if len(self._heads) < CUTS_KEPT:
                self._heads[seen] = head
        return head + b',"age_s":' + _json(reading.value.age_s()) + b"}"


def _json(value: object) -> bytes:
    """JSON as Starlette's ``JSONResponse`` renders it."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode("utf-8")


def bearer_of(scope: Scope) -> str | None:
    """The token of a well-formed ``Authorization: Bearer TOKEN`` header, else None
    (no header, or one the route refuses with its own message)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bearer_in(value.decode("latin-1"))
    return None

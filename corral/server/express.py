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
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.errors import CorralError
from corral.ops.identity import Scope as TokenScope
from corral.ops.tokens import valid_identity
from corral.ops.visible import site_report_for
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
            return JSONResponse(site_report_for(identity, young.value, store).as_json())
        except CorralError:
            return None


def bearer_of(scope: Scope) -> str | None:
    """The token of a well-formed ``Authorization: Bearer TOKEN`` header, else None
    (no header, or one the route refuses with its own message)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bearer_in(value.decode("latin-1"))
    return None

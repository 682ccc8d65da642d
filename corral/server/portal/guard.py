"""Who may see a portal page: the session cookie, the CSRF token, and error pages.

Every portal route is a :class:`PortalRoute`: its caller comes from
:data:`PortalCaller` (the session cookie only), an anonymous visitor is sent
to ``/login`` (303, with the page as a local ``next``), a changing request
without the session's CSRF token is refused (403, audited), and every error
becomes an HTML page with the status the API would give, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from corral.errors import (
    CorralError,
    Forbidden,
    InvalidRequest,
    NotAuthenticated,
    NotFoundError,
    Outcome,
)
from corral.ops.access import authorize_action
from corral.ops.session import Session
from corral.server.context import Call
from corral.server.identity import anonymous, source_of
from corral.server.portal.render import page
from corral.server.portal.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    SAFE_METHODS,
    LoggedIn,
    csrf_matches,
    logged_in,
    refuse_csrf,
)
from corral.server.state import ServerState, state_of

log = logging.getLogger("corral.server.portal")
LOGIN = "/login"


class LoginRequired(Exception):
    """The request has no live session: the visitor logs in first."""


@dataclass
class PortalCall(Call):
    """A portal request's call, with the CSRF token its pages put in their forms."""

    csrf: str = ""


def safe_next(text: str | None) -> str:
    """Where to go after logging in: a path of this site, never another site
    (``//host``, ``https://...``, a backslash trick) and never the login page."""
    if not text or len(text) > 2000 or not text.startswith("/") or text.startswith("//"):
        return "/"
    if "\\" in text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return "/"
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or parts.path in (LOGIN, "/logout"):
        return "/"
    return text


def login_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method not in SAFE_METHODS:  # after logging in, go back to the page, not the form
        here = request.headers.get("referer") or "/"
        parts = urlsplit(here)
        here = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{LOGIN}?next={quote(safe_next(here), safe='/')}"


async def submitted_csrf(request: Request) -> str | None:
    """The CSRF token a changing request carries: the header htmx sends, or the form field."""
    if request.method in SAFE_METHODS:
        return None
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return header
    if request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def portal_caller(request: Request,
                  csrf: Annotated[str | None, Depends(submitted_csrf)]) -> Iterator[PortalCall]:
    """The caller of a portal page, from the session cookie alone."""
    server = state_of(request)
    with server.session(anonymous(source_of(request))) as probe:
        found = logged_in(request, probe)
        if found is None:
            raise LoginRequired
        if request.method not in SAFE_METHODS and not csrf_matches(found, csrf):
            raise refuse_csrf(probe, found.identity, request.url.path)
    with server.session(found.identity) as session:
        yield PortalCall(server, session, found.identity, csrf=found.csrf)


PortalCaller = Annotated[PortalCall, Depends(portal_caller)]


def still_logged_in(server: ServerState, request: Request) -> LoggedIn | None:
    """A live page's session, read again at each refresh: logging out, a new
    password or the user's removal ends the page's stream."""
    with server.session(anonymous(source_of(request))) as probe:
        return logged_in(request, probe)


def error_page(error: CorralError) -> Response:
    return page("error.html", status=error.http_status, error=error, me=None)


class PortalRoute(APIRoute):
    """A route of the portal: a visitor without a session goes to the login page,
    and errors are pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def portal_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                return RedirectResponse(login_url(request), status_code=303)
            except NotAuthenticated:
                return RedirectResponse(login_url(request), status_code=303)
            except CorralError as error:
                return error_page(error)
            except RequestValidationError as invalid:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                    for e in invalid.errors())
                return error_page(InvalidRequest(f"invalid request: {problems}"))
            except Exception as error:  # a bug: one line to the visitor, the rest to the log
                log.exception("internal error")
                failure = CorralError(f"internal error: {type(error).__name__}")
                failure.outcome = Outcome.INTERNAL
                return error_page(failure)

        return portal_handler


def portal_router() -> APIRouter:
    """A router of portal pages: not part of the API's OpenAPI document."""
    return APIRouter(route_class=PortalRoute, include_in_schema=False)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def may(session: Session, project: str, action: str) -> bool:
    """Whether the session's user may do ``action`` to ``project`` (to show its
    controls or not; a request for it is authorised again, and audited, anyway)."""
    try:
        authorize_action(session, session.identity, project, action)
    except (Forbidden, NotFoundError):
        return False
    return True

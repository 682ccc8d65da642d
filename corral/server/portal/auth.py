"""Logging in and out of the portal.

``POST /login`` checks the user name and password with the users'
operation (:func:`corral.ops.users.login`, argon2, audited), after the
failed-login limit (:mod:`corral.server.portal.limits`); a success starts a
session and sets its cookie. ``POST /logout`` ends the session.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from corral.errors import NotAuthenticated
from corral.ops import users
from corral.ops.audit import record
from corral.ops.identity import Identity
from corral.server.identity import anonymous, source_of
from corral.server.portal import limits
from corral.server.portal.guard import LOGIN, PortalCaller, portal_router, safe_next
from corral.server.portal.render import page
from corral.server.portal.sessions import (
    COOKIE,
    clear_cookie,
    clear_login_cookie,
    end_session,
    logged_in,
    login_form_matches,
    login_form_token,
    set_cookie,
    set_login_cookie,
    start_session,
)
from corral.server.state import ServerState, state_of
from corral.state.accounts import Accounts

router = portal_router()
Next = Annotated[str, Query(max_length=2000)]


@router.get(LOGIN)
def login_form(request: Request, next: Next = "/") -> Response:
    server = state_of(request)
    with server.session(anonymous(source_of(request))) as probe:
        if logged_in(request, probe) is not None:
            return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, next=next, user="", message=None)


def _form(request: Request, *, next: str, user: str, message: str | None, status: int = 200,
          headers: dict[str, str] | None = None) -> Response:
    """The login page, its form carrying the token its login cookie holds."""
    token = login_form_token(request)
    answer = page("login.html", status=status, headers=headers, me=None, next=safe_next(next),
                  user=user, message=message, csrf=token)
    set_login_cookie(request, answer, token)
    return answer


def _attempt(server: ServerState, request: Request, user: str, password: str,
             limit: limits.LoginLimit) -> tuple[str | None, int | None, str | None]:
    """(session token, seconds to wait, why refused): a token on success."""
    source = source_of(request)
    with server.session(anonymous(source)) as probe:
        wait = limits.retry_after(probe, source, user, limit)
        if wait is not None:
            record(probe, Identity(name=user[:64] or "-", admin=False, source=source), "login",
                   user[:200], "refused", f"too many failed logins: wait {wait} s")
            return None, wait, f"Too many failed logins: try again in {wait} s."
        try:
            identity = users.login(probe, user, password, source)
        except NotAuthenticated:
            limits.count_failure(probe, source, user, limit)
            return None, None, "The user name or password is wrong."
        limits.clear_failures(probe, identity.name)
        stored = Accounts(probe.require_store()).password_hash(identity.name)
        if stored is None:  # the password was removed in between
            return None, None, "The user name or password is wrong."
        return start_session(probe, identity.name, stored), None, None


@router.post(LOGIN)
async def login(request: Request, user: Annotated[str, Form(max_length=200)] = "",
                password: Annotated[str, Form(max_length=1024)] = "",
                next: Annotated[str, Form(max_length=2000)] = "/",
                csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    server = state_of(request)
    if not login_form_matches(request, csrf_token):
        await run_in_threadpool(_refuse_forged, server, request, user)
        return _form(request, next=next, user=user, status=403, message=FORGED)
    token, wait, refused = await run_in_threadpool(_attempt, server, request, user.strip(),
                                                   password, server.login_limit)
    if token is None:
        status = 429 if wait is not None else 401
        headers = {"Retry-After": str(wait)} if wait is not None else None
        return _form(request, next=next, user=user, message=refused, status=status,
                     headers=headers)
    answer = RedirectResponse(safe_next(next), status_code=303)
    set_cookie(request, answer, token)
    clear_login_cookie(request, answer)
    return answer


FORGED = "This login did not come from this portal's form. Log in again here."


def _refuse_forged(server: ServerState, request: Request, user: str) -> None:
    """Audit a login posted without the form's token (from another site, or stale),
    its password never checked."""
    source = source_of(request)
    with server.session(anonymous(source)) as probe:
        record(probe, Identity(name=user.strip()[:64] or "-", admin=False, source=source),
               "csrf", LOGIN, "refused",
               "a login came without the login form's token: not checked")


@router.post("/logout")
def logout(request: Request, call: PortalCaller) -> Response:
    end_session(call.session, request.cookies.get(COOKIE, ""))
    record(call.session, call.identity, "logout", call.identity.name, "ok")
    answer = RedirectResponse(LOGIN, status_code=303)
    clear_cookie(request, answer)
    return answer

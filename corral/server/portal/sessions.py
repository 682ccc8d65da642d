"""Portal logins: the session cookie, its row in the state database, its CSRF token.

A session is a random token in an HttpOnly, SameSite=Strict cookie (Secure
when the request came over TLS); the database keeps only its SHA-256, with
the user, an expiry and a mark of the user's password hash, so removing the
user or changing their password ends it (:mod:`corral.state.portal`).

The CSRF token of a session is an HMAC of a fixed label keyed by the
session's own token: only someone holding the cookie can compute it, and the
server needs to store nothing more. Every request authenticated by the
cookie that may change something (any method but GET, HEAD and OPTIONS)
must carry it, as the ``csrf_token`` form field or the ``X-CSRF-Token``
header; a bearer token needs none (a browser never adds one by itself).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request, Response

from corral.errors import Forbidden, NotAuthenticated
from corral.ops.audit import record
from corral.ops.credentials import token_digest
from corral.ops.identity import Identity, Scope
from corral.ops.session import Session
from corral.server.identity import source_of
from corral.state.portal import PortalSessions

COOKIE = "corral_session"
LIFETIME = timedelta(hours=8)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_PREFIX = "crs_"
LOGIN_COOKIE = "corral_login"  # the login form's double-submit token (login_form_token)
LOGIN_LIFETIME = timedelta(hours=1)
_LOGIN_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
_CSRF_LABEL = b"corral portal csrf"


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """A request's live session: who it is, and the token its CSRF token derives from."""

    identity: Identity
    token: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def csrf_token(session_token: str) -> str:
    """The CSRF token of the session whose cookie is ``session_token``."""
    return hmac.new(session_token.encode("utf-8"), _CSRF_LABEL, hashlib.sha256).hexdigest()


def csrf_matches(logged_in: LoggedIn, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(logged_in.csrf, given.strip())


def start_session(session: Session, user: str, password_hash: str) -> str:
    """A new session of ``user``: its token, for the cookie (stored as its hash)."""
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    PortalSessions(session.require_store()).add(token_digest(token), user, password_hash,
                                                LIFETIME)
    return token


def end_session(session: Session, token: str) -> bool:
    return PortalSessions(session.require_store()).remove(token_digest(token))


def logged_in(request: Request, session: Session) -> LoggedIn | None:
    """The live session the request's cookie names; None without a cookie, or with
    one that is unknown, expired, or whose user was removed or changed password."""
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 200 or not token.startswith(SESSION_PREFIX):
        return None
    found = PortalSessions(session.require_store()).find(token_digest(token))
    if found is None:
        return None
    return LoggedIn(Identity(name=found.user, admin=found.admin, scope=Scope.FULL,
                             source=source_of(request)), token)


def refuse_csrf(session: Session, identity: Identity, path: str) -> Forbidden:
    """The refusal of a changing request without the session's CSRF token, audited."""
    record(session, identity, "csrf", path[:200], "refused",
           "a request authenticated by the session cookie came without its CSRF token")
    return Forbidden("this request did not come from a page of this portal (its CSRF "
                     "token is missing or wrong): reload the page and try again")


def session_cookie(request: Request, session: Session) -> Identity | None:
    """The credential reader of the portal's cookie, for the API: the session's user,
    with a changing request refused (403) unless it carries ``X-CSRF-Token``."""
    if COOKIE not in request.cookies:
        return None
    found = logged_in(request, session)
    if found is None:
        record(session, session.identity, "authenticate", "session", "refused",
               "unknown or ended portal session")
        raise NotAuthenticated("the portal session has ended: log in again")
    # A websocket (the console) has no method: its route checks the page's Origin.
    method = request.scope.get("method", "GET")
    if method not in SAFE_METHODS and not csrf_matches(found, request.headers.get(CSRF_HEADER)):
        raise refuse_csrf(session, found.identity, request.url.path)
    return found.identity


def login_form_token(request: Request) -> str:
    """The token the login form carries: the visitor's login cookie's, else a new one.

    Logging in has no session to derive a CSRF token from, and a login forged
    from another site would put the victim's browser in the forger's account
    (login CSRF). So the form is a double submit: its hidden field must equal a
    cookie only this portal sets (SameSite=Strict: a form posted from another
    site arrives without it)."""
    given = request.cookies.get(LOGIN_COOKIE, "")
    return given if _LOGIN_TOKEN.fullmatch(given) else secrets.token_urlsafe(24)


def login_form_matches(request: Request, given: str) -> bool:
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    return bool(_LOGIN_TOKEN.fullmatch(cookie)) and hmac.compare_digest(cookie, given.strip())


def set_login_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(LOGIN_COOKIE, token, max_age=int(LOGIN_LIFETIME.total_seconds()),
                        path="/login", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def clear_login_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(LOGIN_COOKIE, path="/login", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


def set_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(COOKIE, token, max_age=int(LIFETIME.total_seconds()), path="/",
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")

"""Who is calling: the identity dependency every route takes.

Credentials are read by a list of *readers*, tried in order: each returns
the identity its credential stands for, None when the request carries no
credential of its kind, or raises :class:`~corral.errors.NotAuthenticated`
for one that is wrong. ``ServerState.credentials`` lists the bearer token
first, then the web portal's session cookie
(:func:`corral.server.portal.sessions.session_cookie`), so no route knows
which one a caller used. A request that no reader recognises is refused
with 401 and an audit entry.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from corral.errors import NotAuthenticated
from corral.ops.audit import record
from corral.ops.identity import Identity
from corral.ops.session import Session
from corral.ops.tokens import authenticate

CredentialReader = Callable[[Request, Session], Identity | None]
ANONYMOUS = "-"


def source_of(request: Request) -> str:
    """The client's address, as the audit log records it."""
    return request.client.host if request.client else "unknown"


def anonymous(source: str) -> Identity:
    """Nobody yet: the identity of a request before its credentials are read."""
    return Identity(name=ANONYMOUS, admin=False, source=source)


def bearer_token(request: Request, session: Session) -> Identity | None:
    """``Authorization: Bearer TOKEN``: the token's user, with the token's scope."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    token = bearer_in(header)
    if token is None:
        record(session, session.identity, "authenticate", "token", "refused",
               "Authorization header is not 'Bearer TOKEN'")
        raise NotAuthenticated("the Authorization header must be 'Bearer TOKEN'")
    return authenticate(session, token, session.identity.source)


def bearer_in(header: str) -> str | None:
    """The token of an ``Authorization`` header's value ``Bearer TOKEN``; None when
    the value is not of that form."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def identify(request: Request, session: Session, readers: list[CredentialReader]) -> Identity:
    """The caller's identity from the first reader that finds a credential."""
    for reader in readers:
        found = reader(request, session)
        if found is not None:
            return found
    record(session, session.identity, "authenticate", request.url.path[:200], "refused",
           "no credentials")
    raise NotAuthenticated("no credentials: send 'Authorization: Bearer TOKEN'")

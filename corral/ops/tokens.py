"""API tokens: issue, list, revoke, and turn a bearer token into an identity.

A user may manage their own tokens, an administrator everyone's. The token
itself is returned once, by :func:`create_token`; the database keeps its
SHA-256 only (:mod:`corral.ops.credentials`), so a lost token is revoked and
replaced, never shown again.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.errors import NotAuthenticated, NotFoundError
from corral.ops.audit import audited, record
from corral.ops.credentials import TOKEN_PREFIX, new_token, token_digest
from corral.ops.identity import Identity, Scope, require_admin, require_full_scope
from corral.ops.session import Session
from corral.state.accounts import Accounts, TokenRecord, TokenUse

UNKNOWN_USER = "-"


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just issued: ``token`` is its only appearance anywhere."""

    record: TokenRecord
    token: str

    def as_json(self) -> dict[str, object]:
        return {**token_json(self.record), "token": self.token}


def token_json(token: TokenRecord) -> dict[str, object]:
    """A token as ``token list --json`` shows it: never the secret."""
    return {
        "id": token.id, "user": token.user, "name": token.label, "scope": token.scope,
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


def create_token(
    session: Session, identity: Identity, user: str, label: str = "",
    scope: Scope = Scope.FULL,
) -> NewToken:
    """Issue a token for ``user`` (themselves or, by an administrator, anyone)."""
    with audited(session, identity, "token.create", user) as note:
        _own_or_admin(identity, user, "create a token for another user")
        accounts = Accounts(session.require_store())
        if accounts.user(user) is None:
            raise NotFoundError(f"user '{user}' does not exist",
                                hint="corral user list shows the users")
        issued = issue(accounts, user, label, scope)
        note.detail = f"token {issued.record.id} ({scope})"
    return issued


def issue(accounts: Accounts, user: str, label: str, scope: Scope) -> NewToken:
    """A new token of an existing user, stored as its hash (no checks, no audit)."""
    token = new_token()
    return NewToken(accounts.add_token(user, label, token_digest(token), scope.value), token)


def list_tokens(session: Session, identity: Identity, user: str | None = None) -> list[TokenRecord]:
    """Tokens of ``user`` (None: an administrator's all, a user's own), revoked ones too."""
    require_full_scope(identity)
    if not identity.admin:
        _own_or_admin(identity, user or identity.name, "list another user's tokens")
        user = identity.name
    return Accounts(session.require_store()).tokens(user)


def revoke_token(session: Session, identity: Identity, token_id: int) -> TokenRecord:
    """Revoke token ``token_id``: from now on it authenticates nobody."""
    with audited(session, identity, "token.revoke", str(token_id)) as note:
        require_full_scope(identity)
        accounts = Accounts(session.require_store())
        found = accounts.token(token_id)
        if found is None or not (identity.admin or found.user == identity.name):
            raise NotFoundError(f"token {token_id} not found",
                                hint="corral token list shows the tokens and their ids")
        revoked = accounts.revoke_token(token_id)
        if revoked is None:  # removed with its user in between
            raise NotFoundError(f"token {token_id} not found")
        note.detail = f"token {token_id} of {revoked.user}"
    return revoked


def authenticate(session: Session, token: str, source: str) -> Identity:
    """The identity a bearer token stands for; :class:`NotAuthenticated` for a token
    that is malformed, unknown or revoked, whose owner is gone (the same message
    for each, the reason in the audit log)."""
    used = _use(Accounts(session.require_store()), token)
    identity = _identity_of(used, source)
    if identity is None:
        found = used.token if used is not None else None
        reason = ("unknown token" if found is None
                  else f"token {found.id} was revoked" if found.revoked
                  else f"token {found.id} belongs to no user")
        who = found.user if found is not None else UNKNOWN_USER
        record(session, Identity(name=who, admin=False, source=source), "authenticate",
               f"token {found.id}" if found else "token", "refused", reason)
        raise NotAuthenticated("the token is not valid (unknown or revoked)")
    return identity


def valid_identity(accounts: Accounts, token: str, source: str) -> Identity | None:
    """:func:`authenticate` for a caller that answers only the valid token itself:
    the identity, or None for any token :func:`authenticate` refuses (whose
    refusal that caller leaves to it, so it is recorded the one way)."""
    return _identity_of(_use(accounts, token), source)


def _use(accounts: Accounts, token: str) -> TokenUse | None:
    return accounts.use_token(token_digest(token)) if token.startswith(TOKEN_PREFIX) else None


def _identity_of(used: TokenUse | None, source: str) -> Identity | None:
    """Who a token presented stands for: None when it is unknown, revoked or its
    user is gone."""
    if used is None or used.token.revoked or used.admin is None:
        return None
    return Identity(name=used.token.user, admin=used.admin, scope=Scope(used.token.scope),
                    source=source)


def _own_or_admin(identity: Identity, user: str, what: str) -> None:
    if identity.name != user:
        require_admin(identity, what)
    require_full_scope(identity)

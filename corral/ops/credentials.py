"""Secrets: API tokens and password hashes, and nothing that touches the database.

Tokens are ``crl_`` + 32 random bytes (``secrets.token_urlsafe``), so a
leaked one is recognisable in a log or a repository scan. Only their SHA-256
is stored: a token has 256 bits of entropy, so no slow hash is needed to
stop guessing, and the server must find a token's row on every request in
one index lookup. Passwords are chosen by people and may be weak, so they
get argon2id (``argon2-cffi``'s recommended parameters).
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TOKEN_PREFIX = "crl_"
# The hash of a random password nobody knows, in the hasher's parameters: verified
# when the user does not exist or has no password, so that answer takes as long
# as a wrong password of a real user and timing tells no names.
DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$4vteLESfErjeqsUxlj7N+g$"
    "HdF8U6oVVynROwJxPAebQP2iqv2hy8kVadweCWhrZng"
)


def new_token() -> str:
    """A fresh API token; shown once to its owner, never stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database keeps of a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    """An argon2id hash of ``password`` (with its own random salt)."""
    return (hasher or PasswordHasher()).hash(password)


def check_password(
    stored: str | None, password: str, hasher: PasswordHasher | None = None
) -> tuple[bool, str | None]:
    """Whether ``password`` matches ``stored`` (None: no such user or no password),
    and a new hash when it matched under parameters older than the hasher's.

    A missing hash is checked against :data:`DUMMY_HASH`, so it costs what a
    real check costs.
    """
    hasher = hasher or PasswordHasher()
    try:
        hasher.verify(stored or DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False, None
    if stored is None:  # the dummy hash matched: no one may log in with it
        return False, None
    return True, hash_password(password, hasher) if hasher.check_needs_rehash(stored) else None

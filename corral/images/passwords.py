"""Passwords for guests: crypt hashes as written, everything else hashed first.

The rule (docs/guest-configuration.md) must never take a plain password for a
hash, because a "hash" is sent to the guest as it stands and the password the
user meant would then not work (or, worse, would be the hash text itself):

* a value in the modular crypt form, ``$ID$[PARAMS$]SALT$HASH`` (``$6$``,
  ``$5$``, ``$y$``, ``$1$``, ``$2b$`` ...), is a hash by itself;
* ``crypt:HASH`` marks any crypt hash explicitly, and is the only way to give
  a traditional DES hash (13 characters of ``./0-9A-Za-z``, MLN's
  ``kyrre 147/Y.NtB9p7w``): without the marker a 13-character plain password
  would look exactly like one. ``crypt:`` followed by something that is not a
  crypt hash is an error, reported at the word by the model builder;
* anything else is plain text, hashed here with SHA-512 crypt, so no plain
  password ever reaches a seed. The salt is derived from the owner's identity,
  so the same file always yields the same seed.
"""

from __future__ import annotations

import hashlib
import re

CRYPT_MARKER = "crypt:"
"""Prefix that marks a value as a crypt hash to be used as it stands."""

# $ID$ then fields of the crypt alphabet ('=' and ',' only occur in parameters
# such as rounds=5000), the last one the non-empty hash itself.
_MODULAR = re.compile(r"\$[0-9a-z]{1,8}(?:\$[./0-9A-Za-z=,]*)*\$[./0-9A-Za-z]+")
_DES = re.compile(r"[./0-9A-Za-z]{13}")
_SALT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def is_modular_hash(value: str) -> bool:
    """True for ``$ID$...$HASH``: the only form taken as a hash without a marker."""
    return _MODULAR.fullmatch(value) is not None


def password_problem(value: str) -> str | None:
    """Why ``value`` cannot be used as a password, or None when it can."""
    if not value.startswith(CRYPT_MARKER):
        return None
    hashed = value[len(CRYPT_MARKER) :]
    if _DES.fullmatch(hashed) or is_modular_hash(hashed):
        return None
    return (
        f"'{CRYPT_MARKER}' must be followed by a crypt hash: 13 characters of "
        "./0-9A-Za-z (DES) or $ID$SALT$HASH"
    )


def guest_password(value: str, owner: str) -> str:
    """The crypt hash to give the guest for ``value`` (``owner`` = host/user, for the salt)."""
    if value.startswith(CRYPT_MARKER):
        problem = password_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value[len(CRYPT_MARKER) :]
    if is_modular_hash(value):
        return value
    from passlib.hash import sha512_crypt  # only seeds need it: model loading stays light

    digest = hashlib.sha256(owner.encode()).digest()
    salt = "".join(_SALT_ALPHABET[b % 64] for b in digest[:16])
    # types-passlib leaves HasRounds.using() unannotated.
    hasher: type[sha512_crypt] = sha512_crypt.using(salt=salt, rounds=5000)  # type: ignore[no-untyped-call]
    return hasher.hash(value)


def checked_password(value: str) -> str:
    """``value`` unchanged, or ValueError when its ``crypt:`` marker holds no hash."""
    problem = password_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value

"""Passwords for guests: crypt hashes as written, plain text hashed before it leaves us.

MLN files carry encoded passwords (``kyrre 147/Y.NtB9p7w``, a DES crypt hash)
but course files often give plain values through variables
(``osuser$[gnum] $userpasswd``). A value that looks like a crypt hash — the
modular ``$id$salt$hash`` form, or 13 characters of the DES alphabet — is
passed on unchanged; anything else is treated as plain text and hashed with
SHA-512 crypt, so no plain password ever reaches a seed. The salt is derived
from the owner's identity, so the same file always yields the same seed.
"""

from __future__ import annotations

import hashlib
import re

from passlib.hash import sha512_crypt

_MODULAR = re.compile(r"^\$[0-9a-z]+\$[^$\s]*\$[./0-9A-Za-z]+$|^\$[0-9a-z]+\$")
_DES = re.compile(r"^[./0-9A-Za-z]{13}$")
_SALT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def is_crypt_hash(value: str) -> bool:
    return bool(_MODULAR.match(value) or _DES.match(value))


def guest_password(value: str, owner: str) -> str:
    """The crypt hash to give the guest for ``value`` (``owner`` = project/host/user)."""
    if is_crypt_hash(value):
        return value
    digest = hashlib.sha256(owner.encode()).digest()
    salt = "".join(_SALT_ALPHABET[b % 64] for b in digest[:16])
    return sha512_crypt.using(salt=salt, rounds=5000).hash(value)

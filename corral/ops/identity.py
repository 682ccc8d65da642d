"""Who is asking: the identity every operation of the server is given.

The server makes one from a bearer token or a password
(:mod:`corral.ops.tokens`, :mod:`corral.ops.users`); the CLI on the machine
itself is the site administrator, who may do everything and owns nothing
(projects it records stay the administrators').
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from corral.errors import Forbidden
from corral.state.store import current_user

LOCAL_SOURCE = "local"


class Scope(StrEnum):
    """What a token may be used for: everything its user may do, or metrics only."""

    FULL = "full"
    METRICS = "metrics"


@dataclass(frozen=True, slots=True)
class Identity:
    """A user (or the site administrator), the scope of the credential they gave,
    and the address they came from, for the audit log."""

    name: str
    admin: bool
    scope: Scope = Scope.FULL
    source: str = LOCAL_SOURCE
    # The site administrator at the machine (the CLI): not a row of ``users``.
    local: bool = False

    @classmethod
    def site_administrator(cls) -> Identity:
        """The CLI run on the machine: the OS user, with every right."""
        return cls(name=current_user(), admin=True, source=LOCAL_SOURCE, local=True)


def require_full_scope(identity: Identity) -> None:
    """Refuse a metrics-only token anything but metrics."""
    if identity.scope is not Scope.FULL:
        raise Forbidden(f"user '{identity.name}' came with a metrics-only token: "
                        "it reads metrics and nothing else")


def require_admin(identity: Identity, what: str) -> None:
    """Refuse anyone but an administrator (with a full token); ``what`` names the
    request, so the refusal says what was refused to whom."""
    require_full_scope(identity)
    if not identity.admin:
        raise Forbidden(f"{what}: only an administrator may do that, and "
                        f"user '{identity.name}' is not one")

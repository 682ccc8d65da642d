"""Checking what a request names (a project, a host) before anything is asked of libvirt."""

from __future__ import annotations

from corral.errors import InvalidRequest
from corral.model import values


def check_name(kind: str, name: str) -> str:
    """A project or host name as a request gives it; InvalidRequest when malformed."""
    try:
        return values.name(name)
    except ValueError as error:
        raise InvalidRequest(f"{kind} {error}") from None


def check_user(name: str) -> str:
    """A guest's user name as a request gives it (``-l USER``); InvalidRequest when
    malformed, the same answer on this machine and through a server."""
    try:
        return values.user_name(name)
    except ValueError as error:
        raise InvalidRequest(str(error)) from None

"""Readings for monitoring: every service host's Corral domains and their figures.

The server's ``/metrics`` exports them; ``status`` shows the same domains
with addresses and recorded hosts, which monitoring does not need. Every
service host is asked at once within one deadline, so a host that is down
is a reading of its own ("not reachable", with why), never a hang.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.backends.base import DomainStats
from corral.ops.deadline import describe_failure, each_within
from corral.ops.identity import Scope, require_admin
from corral.ops.session import Session

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class HostReading:
    """One service host: whether it answered in time and its Corral domains' figures."""

    service_host: str
    reachable: bool
    error: str | None
    domains: tuple[DomainStats, ...] = ()


def readings(session: Session, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[HostReading]:
    """A reading of every configured service host, in configuration order; for
    administrators and metrics-only tokens (every project's VMs are in it)."""
    identity = session.identity
    if identity.scope is not Scope.METRICS:
        require_admin(identity, "read the site's metrics")
    names = session.service_host_names()
    answers = each_within(lambda n: session.backend(n).survey(None).stats, names, timeout_s)
    found = []
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, tuple):
            found.append(HostReading(name, True, None, answer))
        else:
            found.append(HostReading(name, False, describe_failure(answer)))
    return found

"""Hosts a session has placed on service hosts and not yet defined there.

The scheduler places a project's new hosts from what the service hosts run
now. When one command brings up many projects (``corral up A.corral
B.corral ...``, a course of group projects), each project would otherwise be
placed from the same picture, before any of the others has defined a VM,
and projects of one host each would all land on the same service host. So
the command places its projects one after another, in the order given,
before any is brought up (:func:`corral.ops.many.up_many`): each placement
counts the hosts the ones before it placed (:meth:`PendingPlacements.others`)
and records its own, and each project's ``up`` then keeps the service host
decided for it (:meth:`PendingPlacements.decided`) instead of choosing again
from a picture the other projects are changing. The order decides, so the
same command over the same service hosts places the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from corral.plan.placement import Need


@dataclass(frozen=True, slots=True)
class PendingHost:
    """A host placed by the scheduler: its project, the service host, what it needs."""

    project: str
    service_host: str
    need: Need


class PendingPlacements:
    """The scheduler's decisions of one session, by project (thread-safe: the
    projects of one command are brought up side by side)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._placed: dict[str, dict[str, PendingHost]] = {}

    def record(self, project: str, placed: Iterable[PendingHost]) -> None:
        """Remember where the scheduler put ``project``'s new hosts (replacing what
        an earlier placement of it decided)."""
        with self._lock:
            self._placed[project] = {p.need.host: p for p in placed}

    def decided(self, project: str) -> Mapping[str, str]:
        """host -> service host the scheduler chose for ``project`` in this session."""
        with self._lock:
            return {host: p.service_host for host, p in self._placed.get(project, {}).items()}

    def others(self, project: str, service_host: str) -> list[PendingHost]:
        """The hosts of other projects placed on ``service_host`` in this session."""
        with self._lock:
            return [p for name, hosts in sorted(self._placed.items()) if name != project
                    for p in hosts.values() if p.service_host == service_host]

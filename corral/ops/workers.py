"""Bounded parallel work across service hosts, each item failing alone.

Work on many VMs is mostly waiting on libvirt calls (RPCs to a daemon that
copies disks, defines domains, starts QEMU), so threads are the right tool,
but an unbounded number of them would swamp a small service host and this
process alike. Each parallel step is therefore bounded twice:

* per service host: four times its CPU count, at least 2 and at most 16 (a
  host with 2 CPUs gets 8 calls at once, one with 4 or more gets 16): the
  calls mostly wait on QEMU and qemu-img, and on 2 CPUs a raw libvirt-python
  ``up`` of 30 guests was fastest with 8 threads (docs/operations.md);
* overall: four times this machine's CPU count, at least 4 and at most 64,
  and never more than the step has items.

Items that belong to no service host (projects, for example) share the
overall bound only. The overall bound is per step; the per-host bound is
also kept across the steps of a session that run at once (the VM steps of
many projects brought up together): an item on a service host takes one of
the session's places on that host (:class:`HostPlaces`) for as long as it
runs. A step run inside such an item (a VM's volumes while it is built)
takes no place of its own: it is part of the work its caller's place
stands for, bounded by the step's own per-host bound. So a thread that
waits for a place never holds one, and no two items can wait on each other.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from corral.errors import CorralError

T = TypeVar("T")
R = TypeVar("R")

PER_HOST_MIN, PER_HOST_MAX = 2, 16
OVERALL_MIN, OVERALL_MAX = 4, 64


def host_bound(cpus: int | None) -> int:
    """Calls at once on a service host with ``cpus`` CPUs (None: not known)."""
    if cpus is None or cpus < 1:
        return PER_HOST_MIN
    return max(PER_HOST_MIN, min(PER_HOST_MAX, 4 * cpus))


def overall_bound(items: int, local_cpus: int | None = None) -> int:
    """Calls at once in one step of ``items`` items, from this machine's CPUs."""
    cpus = local_cpus if local_cpus is not None else (os.cpu_count() or 1)
    return max(1, min(items, max(OVERALL_MIN, min(OVERALL_MAX, 4 * cpus))))


# Whether the work running in this context holds a place on a service host: a
# context variable, so each item's thread (which runs in a copy of its step's
# context) knows whether the step it belongs to runs inside a held place.
_HOLDS_PLACE: contextvars.ContextVar[bool] = contextvars.ContextVar("holds_place",
                                                                     default=False)


class HostPlaces:
    """The places of one session on each service host: at most ``bound(host)``
    items on a host run at once, whichever step they belong to."""

    def __init__(self, bound: Callable[[str], int]) -> None:
        self._bound = bound
        self._lock = threading.Lock()
        self._gates: dict[str, threading.BoundedSemaphore] = {}

    def _gate(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            gate = self._gates.get(host)
        if gate is not None:
            return gate
        bound = max(1, self._bound(host))  # may ask the host: not under the lock
        with self._lock:
            return self._gates.setdefault(host, threading.BoundedSemaphore(bound))

    @contextlib.contextmanager
    def place(self, host: str) -> Iterator[None]:
        """Hold a place on ``host`` while the block runs; inside a held place, none
        is taken (see the module's docstring)."""
        if _HOLDS_PLACE.get():
            yield
            return
        with self._gate(host):
            token = _HOLDS_PLACE.set(True)
            try:
                yield
            finally:
                _HOLDS_PLACE.reset(token)


def run_bounded(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    where: Callable[[T], str | None],
    per_host: Callable[[str], int],
    overall: int,
    places: HostPlaces | None = None,
) -> tuple[dict[int, R], dict[int, CorralError]]:
    """``fn(item)`` for every item: results and the CorralErrors raised, by the
    item's index (one item failing stops no other). Items are grouped by ``where(item)``
    (their service host, or None); each group runs at most ``per_host(name)`` at
    once, and all of them together at most ``overall``; with ``places``, each
    item on a service host also holds one of its places there. Any other
    exception (a bug, an interrupt) is raised once every item has finished."""
    done: dict[int, R] = {}
    failed: dict[int, CorralError] = {}
    groups: dict[str | None, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(where(item), []).append(index)
    gate = threading.BoundedSemaphore(max(1, overall))

    def one(index: int) -> R:
        host = where(items[index])
        held = places.place(host) if places is not None and host is not None \
            else contextlib.nullcontext()
        with held, gate:
            return fn(items[index])

    pools: list[ThreadPoolExecutor] = []
    futures: list[tuple[int, Future[R]]] = []
    try:
        for key, indexes in groups.items():
            bound = overall if key is None else min(overall, per_host(key))
            pool = ThreadPoolExecutor(max_workers=max(1, min(len(indexes), bound)),
                                      thread_name_prefix=f"corral-{key or 'any'}")
            pools.append(pool)
            futures += [(i, pool.submit(contextvars.copy_context().run, one, i))
                        for i in indexes]
    finally:
        for pool in pools:
            pool.shutdown(wait=True)
    unexpected: BaseException | None = None
    for index, future in futures:
        error = future.exception()
        if error is None:
            done[index] = future.result()
        elif isinstance(error, CorralError):
            failed[index] = error
        elif unexpected is None:
            unexpected = error
    if unexpected is not None:
        raise unexpected
    return done, failed

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
overall bound only. The bounds are per step, not per session, so a step run
inside another (each project's VMs inside the projects) never waits for a
worker its caller holds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
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


def run_bounded(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    where: Callable[[T], str | None],
    per_host: Callable[[str], int],
    overall: int,
) -> tuple[dict[int, R], dict[int, CorralError]]:
    """``fn(item)`` for every item: results and the CorralErrors raised, by the
    item's index (one item failing stops no other). Items are grouped by ``where(item)``
    (their service host, or None); each group runs at most ``per_host(name)`` at
    once, and all of them together at most ``overall``. Any other exception (a
    bug, an interrupt) is raised once every item has finished."""
    done: dict[int, R] = {}
    failed: dict[int, CorralError] = {}
    groups: dict[str | None, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(where(item), []).append(index)
    gate = threading.BoundedSemaphore(max(1, overall))

    def one(index: int) -> R:
        with gate:
            return fn(items[index])

    pools: list[ThreadPoolExecutor] = []
    futures: list[tuple[int, Future[R]]] = []
    try:
        for key, indexes in groups.items():
            bound = overall if key is None else min(overall, per_host(key))
            pool = ThreadPoolExecutor(max_workers=max(1, min(len(indexes), bound)),
                                      thread_name_prefix=f"corral-{key or 'any'}")
            pools.append(pool)
            futures += [(i, pool.submit(one, i)) for i in indexes]
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

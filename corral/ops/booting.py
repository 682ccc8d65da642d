"""Boot-storm control: a few guests booting at once per service host, each timed alone.

Started all at once, guests share the host's CPUs and every one of them
boots slowly: measured on 2 cores under TCG, 36 tiny guests were all ready
after 151 s, each having taken about 145 s (so a 60-guest ``up`` ran past the
default 180 s timeout), while started 4 at a time they were all ready after
137 s, each in about 15 s. So each service host gets a queue with ``slots``
places: a guest takes a place when it is started and gives it back when it is
ready, hopeless (crashed, a boot error, failed to start) or past its own
timeout, and the next guest in the queue starts then. Service hosts do not
share CPUs, so each runs its own queue, all of them at once.

Each guest's readiness timeout counts from its own start, not from the
command's: a guest that waited in the queue for a minute still has its whole
``wait`` timeout to boot. A guest that needs no readiness (``wait none``)
is started and gives its place back at once. A guest that is already running
takes a place too (it may still be booting) but is not started again.

How many places: ``[service_hosts.NAME] boot_parallel`` when the site config
sets it; otherwise :func:`choose_slots` of the host's CPUs and how many of them
are busy right now, measured from libvirt's node CPU statistics.

The places belong to the service host, not to one project: when one command
boots several projects at once (``corral up A.corral B.corral ...``), their
queues on a service host take places from the same :class:`BootPlaces`
(the session keeps one per service host), so that host still boots at most
K guests, not K per project.

The queue logic (:func:`boot_host`) takes its clock, its sleep, the start
call and the observer as arguments, so its order and timing are tested with
a fake clock and simulated guests; :mod:`corral.ops.projects` binds them to
the service hosts' backends.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from corral.errors import CorralError
from corral.model import WaitKind
from corral.ops.readiness import Observation, Outcome, Target, settle

# Booting guests per CPU that is free: measured under TCG, two per free CPU keep
# each guest's boot short (one guest rarely keeps a CPU busy all the time)
# while the host stays fully used.
SLOTS_PER_FREE_CPU = 2
POLL_S = 0.5


def choose_slots(cpus: int, busy_cpus: float) -> int:
    """Guests to boot at once on a host with ``cpus`` CPUs, ``busy_cpus`` of them in use.

    Two per free CPU, at least one (a fully loaded host still boots its guests,
    one at a time) and at most two per CPU.
    """
    free = max(0.0, cpus - max(0.0, busy_cpus))
    return max(1, min(SLOTS_PER_FREE_CPU * cpus, round(SLOTS_PER_FREE_CPU * free)))


@dataclass(frozen=True, slots=True)
class BootJob:
    """One guest to boot and wait for; ``start`` False: already running, only watched."""

    target: Target
    start: bool = True


Starter = Callable[[BootJob], None]  # raises CorralError when the guest cannot start
HostObserver = Callable[[Sequence[Target]], dict[str, Observation]]


class BootPlaces:
    """The places to boot guests in on one service host, shared by every queue
    that boots there at the same time (the projects of one command)."""

    def __init__(self, slots: int) -> None:
        self.slots = max(1, slots)
        self._taken = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take a place if one is free; whether it was."""
        with self._lock:
            if self._taken >= self.slots:
                return False
            self._taken += 1
            return True

    def give(self) -> None:
        with self._lock:
            self._taken = max(0, self._taken - 1)

    def free(self) -> int:
        with self._lock:
            return self.slots - self._taken


@dataclass(frozen=True, slots=True)
class HostQueue:
    """What one service host boots: its jobs in order, its places, and how to act there.

    ``places``: shared with other queues on the same service host; None: the
    queue's own ``slots`` places."""

    service_host: str
    jobs: tuple[BootJob, ...]
    slots: int
    start: Starter
    observe: HostObserver
    places: BootPlaces | None = None


@dataclass(frozen=True, slots=True)
class Events:
    """Callbacks on progress; each may be called from any host's thread."""

    started: Callable[[str, BootJob, int], None] = lambda _host, _job, _booting: None
    finished: Callable[[str, Outcome], None] = lambda _host, _outcome: None


@dataclass(slots=True)
class _Booting:
    job: BootJob
    began: float  # on the queue's clock


def boot_host(
    queue: HostQueue,
    *,
    events: Events = Events(),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll_s: float = POLL_S,
    origin: float | None = None,
    stop: threading.Event | None = None,
) -> list[Outcome]:
    """Boot one host's jobs, at most ``queue.slots`` at once; one Outcome per job, in order.

    ``origin`` is when the whole operation began (``started_s`` counts from it);
    ``stop`` set (the operation was interrupted) ends the loop early, with the
    outcomes known so far.
    A start that raises CorralError is the guest's outcome (not ready, with the
    error), and a round whose observation fails is a round without news; both
    leave the other guests to go on.
    """
    origin = clock() if origin is None else origin
    places = queue.places or BootPlaces(queue.slots)
    waiting = deque(queue.jobs)
    booting: dict[str, _Booting] = {}
    done: dict[str, Outcome] = {}

    def finish(item: _Booting, ready: bool, reason: str, now: float) -> None:
        outcome = Outcome(
            item.job.target, ready, reason, round(now - item.began, 1),
            round(item.began - origin, 1),
        )
        done[item.job.target.domain] = outcome
        try:
            events.finished(queue.service_host, outcome)
        finally:
            places.give()  # after the event: a place is held from started to finished

    try:
        while (waiting or booting) and not (stop is not None and stop.is_set()):
            while waiting and places.take():
                item = _Booting(waiting.popleft(), clock())
                if item.job.start:
                    try:
                        queue.start(item.job)
                    except CorralError as error:
                        finish(item, False, f"did not start: {error.message}", clock())
                        continue
                if item.job.target.kind is WaitKind.NONE:
                    finish(item, True, "not waited for", clock())
                    continue
                booting[item.job.target.domain] = item
                events.started(queue.service_host, item.job, len(booting))
            if not booting:
                if waiting:  # every place is another queue's: wait for one to free
                    sleep(poll_s)
                continue
            _watch(queue, booting, finish, clock)
            if booting and not (waiting and places.free()):
                sleep(poll_s)  # no place freed for a waiting guest: poll again later
    finally:
        for _ in booting:  # interrupted: the places go back for the other queues
            places.give()
    return [done[job.target.domain] for job in queue.jobs if job.target.domain in done]


def _watch(
    queue: HostQueue,
    booting: dict[str, _Booting],
    finish: Callable[[_Booting, bool, str, float], None],
    clock: Callable[[], float],
) -> None:
    """One round of watching the booting guests: each one settled (ready, hopeless
    or past its own timeout) is finished and leaves ``booting``."""
    try:
        seen = queue.observe([b.job.target for b in booting.values()])
        trouble = None
    except CorralError as error:
        seen, trouble = {}, f"service host {queue.service_host} not observed: {error.message}"
    now = clock()
    for name, item in list(booting.items()):
        if trouble is not None:
            observation: Observation | None = Observation("unknown", None, {})
        else:
            observation = seen.get(name)
        verdict = settle(item.job.target, observation, now - item.began)
        if verdict is None:
            continue
        reason = verdict.reason if trouble is None else f"{verdict.reason} ({trouble})"
        del booting[name]
        finish(item, verdict.ready, reason, now)


def boot_all(
    queues: Sequence[HostQueue],
    *,
    events: Events = Events(),
    clock: Callable[[], float] = time.monotonic,
    poll_s: float = POLL_S,
) -> dict[str, Outcome]:
    """Run every host's queue at once (a thread each); domain name -> Outcome.

    Errors other than CorralError (bugs) are raised once every queue is done;
    an interruption (Ctrl-C) stops every queue at its next round and is raised.
    """
    origin = clock()
    results: dict[str, Outcome] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def run(queue: HostQueue) -> None:
        outcomes = boot_host(
            queue, events=events, clock=clock, poll_s=poll_s, origin=origin, stop=stop
        )
        with lock:
            results.update((o.target.domain, o) for o in outcomes)

    busy = [q for q in queues if q.jobs]
    if len(busy) == 1:
        run(busy[0])  # in the caller's thread: Ctrl-C stops it at once
        return results
    pool = ThreadPoolExecutor(max_workers=len(busy))
    try:
        futures = [pool.submit(run, q) for q in busy]
        errors = [f.exception() for f in futures]
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True)
    for error in errors:
        if error is not None:
            raise error
    return results

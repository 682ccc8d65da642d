"""The boot queue: order, places and per-guest deadlines, on a fake clock with
simulated guests (pure logic: no libvirt, nothing booted)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from corral.errors import BackendError
from corral.model import Host, WaitKind, WaitSpec
from corral.ops.booting import (
    BootJob,
    BootPlaces,
    Events,
    HostQueue,
    boot_all,
    boot_host,
    choose_slots,
)
from corral.ops.readiness import Observation, Target


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Guests:
    """Simulated guests: each prints its ready line ``boot_s[name]`` seconds after it
    was started (never, when absent); records when each started."""

    clock: Clock
    boot_s: dict[str, float]
    fail_start: set[str] = field(default_factory=set)
    started_at: dict[str, float] = field(default_factory=dict)
    peak: int = 0

    def start(self, job: BootJob) -> None:
        name = job.target.host.name
        if name in self.fail_start:
            raise BackendError(f"cannot start domain {job.target.domain}: no memory")
        self.started_at[name] = self.clock()

    def observe(self, targets: Sequence[Target]) -> dict[str, Observation]:
        self.peak = max(self.peak, len(targets))
        seen = {}
        for target in targets:
            name = target.host.name
            up = self.clock() - self.started_at.get(name, self.clock())
            ready = name in self.boot_s and up >= self.boot_s[name]
            seen[target.domain] = Observation(
                "running", f"corral-ready {name}\n" if ready else "booting\n", {}
            )
        return seen


def _job(name: str, *, timeout: int = 180, kind: WaitKind = WaitKind.CONSOLE,
         start: bool = True) -> BootJob:
    host = Host(name=name, wait=WaitSpec(kind=kind, timeout_s=timeout))
    return BootJob(Target(host, f"lab-{name}"), start=start)


def _run(jobs: list[BootJob], guests: Guests, slots: int, clock: Clock,
         events: Events = Events()):
    queue = HostQueue("local", tuple(jobs), slots, guests.start, guests.observe)
    return boot_host(queue, events=events, clock=clock, sleep=clock.sleep, poll_s=1.0)


def test_at_most_slots_boot_at_once_and_the_next_starts_when_one_is_ready() -> None:
    clock = Clock()
    guests = Guests(clock, {f"g{i}": 10 for i in range(5)})
    outcomes = _run([_job(f"g{i}") for i in range(5)], guests, 2, clock)
    assert guests.started_at == {"g0": 0, "g1": 0, "g2": 10, "g3": 10, "g4": 20}
    assert guests.peak == 2
    assert [o.target.host.name for o in outcomes] == [f"g{i}" for i in range(5)]
    assert all(o.ready and o.seconds == 10 for o in outcomes)
    assert [o.started_s for o in outcomes] == [0, 0, 10, 10, 20]
    assert clock.now == 30


def test_a_fast_guest_frees_its_place_for_the_next_at_once() -> None:
    clock = Clock()
    guests = Guests(clock, {"slow": 30, "fast": 2, "next": 5})
    _run([_job("slow"), _job("fast"), _job("next")], guests, 2, clock)
    assert guests.started_at == {"slow": 0, "fast": 0, "next": 2}


def test_each_timeout_counts_from_the_guests_own_start() -> None:
    clock = Clock()
    # "stuck" never becomes ready; it waits 20 s in the queue, then has its full 15 s.
    guests = Guests(clock, {"a": 20})
    outcomes = _run([_job("a"), _job("stuck", timeout=15)], guests, 1, clock)
    stuck = outcomes[1]
    assert guests.started_at["stuck"] == 20
    assert not stuck.ready
    assert stuck.seconds == 15 and stuck.started_s == 20
    assert stuck.reason.startswith("not ready after 15 s: no ready signal yet")


def test_a_guest_past_its_timeout_frees_its_place() -> None:
    clock = Clock()
    guests = Guests(clock, {"b": 3})
    outcomes = _run([_job("stuck", timeout=5), _job("b")], guests, 1, clock)
    assert guests.started_at == {"stuck": 0, "b": 5}
    assert [o.ready for o in outcomes] == [False, True]


def test_guests_that_need_no_readiness_take_no_place() -> None:
    clock = Clock()
    guests = Guests(clock, {"a": 10})
    outcomes = _run(
        [_job("n1", kind=WaitKind.NONE), _job("n2", kind=WaitKind.NONE), _job("a")],
        guests, 1, clock,
    )
    assert guests.started_at == {"n1": 0, "n2": 0, "a": 0}
    assert [(o.ready, o.reason) for o in outcomes[:2]] == [(True, "not waited for")] * 2


def test_a_failed_start_is_its_outcome_and_frees_the_place() -> None:
    clock = Clock()
    guests = Guests(clock, {"b": 4}, fail_start={"a"})
    outcomes = _run([_job("a"), _job("b")], guests, 1, clock)
    assert not outcomes[0].ready
    assert outcomes[0].reason == "did not start: cannot start domain lab-a: no memory"
    assert guests.started_at == {"b": 0} and outcomes[1].ready


def test_a_running_guest_is_watched_not_started() -> None:
    clock = Clock()
    guests = Guests(clock, {"old": 0})
    started: list[str] = []

    def start(job: BootJob) -> None:
        started.append(job.target.host.name)
        guests.start(job)

    queue = HostQueue("local", (_job("old", start=False), _job("new")), 1, start,
                      guests.observe)
    guests.boot_s["new"] = 1
    outcomes = boot_host(queue, clock=clock, sleep=clock.sleep, poll_s=1.0)
    assert started == ["new"]
    assert all(o.ready for o in outcomes)


def test_an_observation_that_fails_is_a_round_without_news() -> None:
    clock = Clock()
    guests = Guests(clock, {"a": 3})
    calls = []

    def flaky(targets: Sequence[Target]) -> dict[str, Observation]:
        calls.append(clock())
        if len(calls) == 1:
            raise BackendError("connection reset")
        return guests.observe(targets)

    queue = HostQueue("h1", (_job("a"),), 1, guests.start, flaky)
    (outcome,) = boot_host(queue, clock=clock, sleep=clock.sleep, poll_s=1.0)
    assert outcome.ready and len(calls) > 1


def test_an_observation_that_keeps_failing_names_the_host_at_the_timeout() -> None:
    clock = Clock()
    guests = Guests(clock, {})

    def down(_targets: Sequence[Target]) -> dict[str, Observation]:
        raise BackendError("no route to host")

    queue = HostQueue("h1", (_job("a", timeout=3),), 1, guests.start, down)
    (outcome,) = boot_host(queue, clock=clock, sleep=clock.sleep, poll_s=1.0)
    assert not outcome.ready
    assert "service host h1 not observed: no route to host" in outcome.reason


def test_events_report_starts_and_outcomes() -> None:
    clock = Clock()
    guests = Guests(clock, {"a": 1, "b": 1})
    seen: list[tuple[str, str, int]] = []
    events = Events(
        started=lambda host, job, booting: seen.append((host, job.target.host.name, booting)),
        finished=lambda host, outcome: seen.append((host, outcome.target.host.name, -1)),
    )
    _run([_job("a"), _job("b")], guests, 2, clock, events)
    assert seen == [("local", "a", 1), ("local", "b", 2), ("local", "a", -1), ("local", "b", -1)]


def test_hosts_boot_side_by_side() -> None:
    # Real time here (threads); each host's only guest is ready at once.
    queues = []
    for host in ("h1", "h2", "h3"):
        clock = Clock()
        guests = Guests(clock, {f"{host}x": 0})
        queues.append(HostQueue(host, (_job(f"{host}x"),), 1, guests.start, guests.observe))
    results = boot_all(queues, poll_s=0.01)
    assert sorted(results) == ["lab-h1x", "lab-h2x", "lab-h3x"]
    assert all(o.ready for o in results.values())


class RealClock(Clock):
    """The monotonic clock, for queues run on threads."""

    def __call__(self) -> float:
        return time.monotonic()


def test_the_projects_of_one_command_share_a_service_hosts_places() -> None:
    """``up A B C`` boots at most K guests at once on a service host, not K per project:
    the three projects' queues there take their places from one BootPlaces."""
    places = BootPlaces(2)
    lock = threading.Lock()
    booting, peak = 0, 0

    def started(_host: str, _job: BootJob, _count: int) -> None:
        nonlocal booting, peak
        with lock:
            booting += 1
            peak = max(peak, booting)

    def finished(_host: str, _outcome: object) -> None:
        nonlocal booting
        with lock:
            booting -= 1

    queues = []
    for project in ("a", "b", "c"):
        guests = Guests(RealClock(), {f"{project}{i}": 0.05 for i in range(3)})
        jobs = tuple(BootJob(Target(Host(name=f"{project}{i}"), f"{project}-g{i}"))
                     for i in range(3))
        queues.append(HostQueue("h1", jobs, 2, guests.start, guests.observe, places))
    results = boot_all(queues, events=Events(started, finished), poll_s=0.01)
    assert len(results) == 9 and all(o.ready for o in results.values())
    assert peak == 2  # each queue alone would have booted 2: 6 at once
    assert places.free() == 2


def test_a_queue_interrupted_gives_its_places_back() -> None:
    clock = Clock()
    guests = Guests(clock, {"a": 5, "b": 5})
    places = BootPlaces(2)
    stop = threading.Event()
    events = Events(started=lambda _host, _job, count: count == 2 and stop.set())
    queue = HostQueue("local", (_job("a"), _job("b")), 2, guests.start, guests.observe, places)
    assert boot_host(queue, events=events, clock=clock, sleep=clock.sleep, stop=stop) == []
    assert places.free() == 2


@pytest.mark.parametrize(("cpus", "busy", "slots"), [
    (2, 0.0, 4), (2, 1.0, 2), (2, 2.0, 1), (2, 5.0, 1), (8, 0.2, 16), (1, 0.0, 2), (4, 1.3, 5),
])
def test_slots_from_cpus_and_load(cpus: int, busy: float, slots: int) -> None:
    assert choose_slots(cpus, busy) == slots


def test_an_interruption_stops_the_queue_at_its_next_round() -> None:
    clock = Clock()
    guests = Guests(clock, {"a": 5, "b": 5})
    stop = threading.Event()
    events = Events(started=lambda _host, _job, _booting: stop.set())
    queue = HostQueue("local", (_job("a"), _job("b")), 1, guests.start, guests.observe)
    outcomes = boot_host(queue, events=events, clock=clock, sleep=clock.sleep, poll_s=1.0,
                         stop=stop)
    assert outcomes == [] and guests.started_at == {"a": 0}

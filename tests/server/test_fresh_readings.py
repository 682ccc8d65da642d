"""The reading the server's status requests share (:mod:`corral.server.fresh`):
never older than its age, taken once for callers arriving together, begun
ahead under steady requests, forgotten after a change."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from corral.server.fresh import FreshReadings


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counter:
    """A read that counts itself and returns its number."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


def inline(work: Callable[[], None]) -> None:
    """Take the reading ahead at once, on the caller's thread (deterministic)."""
    work()


def held() -> tuple[Clock, Counter, list[Callable[[], None]], FreshReadings[int]]:
    """Readings (age 1 s, refreshed at 0.5 s) whose background work waits in a
    list until the test runs it."""
    clock, read = Clock(), Counter()
    started: list[Callable[[], None]] = []
    fresh = FreshReadings(read, max_age_s=1.0, refresh_after_s=0.5, clock=clock,
                          background=started.append)
    return clock, read, started, fresh


def test_a_reading_is_reused_until_its_age_and_never_after() -> None:
    clock, read = Clock(), Counter()
    fresh = FreshReadings(read, max_age_s=1.0, clock=clock)
    assert fresh.get().value == 1
    clock.now += 0.999
    assert fresh.get().value == 1
    clock.now += 0.002  # 1.001 s after the first reading began
    reading = fresh.get()
    assert (reading.value, reading.began) == (2, clock.now)
    assert read.calls == 2


def test_no_caller_is_given_a_reading_older_than_the_age() -> None:
    clock, read = Clock(), Counter()
    fresh = FreshReadings(read, max_age_s=1.0, refresh_after_s=0.5, clock=clock,
                          background=inline)
    steps = random.Random(7)
    for _ in range(2000):
        clock.now += steps.choice([0.0, 0.01, 0.2, 0.49, 0.51, 0.999, 1.0, 1.5])
        reading = fresh.get()
        assert clock.now - reading.began <= 1.0
    assert read.calls < 2000  # and it was shared


def test_a_reading_past_half_its_age_is_given_and_the_next_is_begun_ahead() -> None:
    clock, read, started, fresh = held()
    assert fresh.get().value == 1
    clock.now += 0.6
    assert fresh.get().value == 1  # answered at once, from the reading it has
    assert fresh.get().value == 1
    assert len(started) == 1  # one reading begun ahead, not one per caller
    started[0]()
    clock.now += 0.1
    reading = fresh.get()
    assert reading.value == 2
    assert reading.began == pytest.approx(clock.now - 0.1)  # when it was begun
    assert read.calls == 2


def test_callers_arriving_together_share_one_reading() -> None:
    entered, release = threading.Event(), threading.Event()
    calls = []

    def slow_read() -> int:
        calls.append(threading.get_ident())
        entered.set()
        assert release.wait(10)
        return len(calls)

    fresh = FreshReadings(slow_read, max_age_s=1.0)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = [pool.submit(fresh.get) for _ in range(16)]
        assert entered.wait(10)
        time.sleep(0.2)  # the other fifteen are waiting by now
        release.set()
        readings = [a.result(timeout=10) for a in answers]
    assert len(calls) == 1
    assert {r.value for r in readings} == {1}
    assert len({id(r) for r in readings}) == 1


def test_an_error_reaches_every_waiting_caller_and_the_next_caller_reads_again() -> None:
    entered, release = threading.Event(), threading.Event()
    outcomes = iter([RuntimeError("libvirt went away"), "fine"])

    def failing_read() -> str:
        entered.set()
        assert release.wait(10)
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    fresh = FreshReadings(failing_read, max_age_s=1.0)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = [pool.submit(fresh.get) for _ in range(4)]
        assert entered.wait(10)
        time.sleep(0.2)
        release.set()
        for answer in answers:
            with pytest.raises(RuntimeError, match="went away"):
                answer.result(timeout=10)
    assert fresh.get().value == "fine"


def test_a_reading_begun_before_a_change_is_not_given_after_it() -> None:
    clock, read = Clock(), Counter()
    fresh = FreshReadings(read, max_age_s=1.0, clock=clock)
    assert fresh.get().value == 1
    fresh.forget()
    assert fresh.get().value == 2
    clock.now += 0.1
    assert fresh.get().value == 2


def test_a_reading_taken_too_long_is_not_joined_by_callers_it_is_too_old_for() -> None:
    """A survey stuck on a silent service host for longer than the age: a caller
    arriving after that begins its own instead of waiting for an old reading."""
    clock = Clock()
    entered, release = threading.Event(), threading.Event()
    began: list[float] = []

    def read() -> float:
        began.append(clock.now)
        if len(began) == 1:
            entered.set()
            assert release.wait(10)
        return clock.now

    fresh = FreshReadings(read, max_age_s=1.0, clock=clock)
    with ThreadPoolExecutor(max_workers=1) as pool:
        stuck = pool.submit(fresh.get)
        assert entered.wait(10)
        clock.now += 1.5
        late = fresh.get()  # does not wait for the stuck one
        assert late.began == clock.now
        release.set()
        assert stuck.result(timeout=10).began == 100.0
    assert fresh.get() is late  # the older reading, finished last, did not replace it


def test_the_age_cannot_be_negative_nor_the_refresh_later_than_it() -> None:
    with pytest.raises(ValueError):
        FreshReadings(Counter(), max_age_s=-1)
    with pytest.raises(ValueError):
        FreshReadings(Counter(), max_age_s=1.0, refresh_after_s=2.0)


def test_settle_waits_for_a_reading_under_way_and_no_longer() -> None:
    """At shutdown the server waits for a reading begun ahead: it may hold
    connections to the service hosts."""
    release = threading.Event()
    began = threading.Event()

    def read() -> int:
        began.set()
        release.wait(10)
        return 1

    readings = FreshReadings(read, max_age_s=60)
    assert readings.settle(0.01)  # nothing under way
    reader = threading.Thread(target=readings.get)
    reader.start()
    assert began.wait(10)
    assert not readings.settle(0.05)  # still reading
    release.set()
    assert readings.settle(10)
    reader.join(10)
    assert readings.get().value == 1


def test_a_reported_change_begins_a_reading_that_get_waits_for_and_young_does_not() -> None:
    clock, read, started, fresh = held()
    assert fresh.get().value == 1
    clock.now += 0.1
    fresh.changed()
    assert len(started) == 1  # begun at once, in the background
    young = fresh.young()
    assert young is not None and young.value == 1  # the poller is not held
    assert len(started) == 1  # and begins no second one
    started[0]()
    assert fresh.get().value == 2
    assert fresh.young() is not None and fresh.young().value == 2  # type: ignore[union-attr]
    assert read.calls == 2


def test_get_after_a_reported_change_waits_for_a_reading_begun_after_it() -> None:
    entered, release = threading.Event(), threading.Event()
    clock = Clock()
    calls: list[float] = []

    def read() -> float:
        calls.append(clock.now)
        if len(calls) == 2:
            entered.set()
            assert release.wait(10)
        return clock.now

    fresh = FreshReadings(read, max_age_s=1.0, clock=clock, background=_thread)
    fresh.get()
    clock.now += 0.1
    fresh.changed()
    assert entered.wait(10)
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(fresh.get)
        time.sleep(0.2)
        assert not waiting.done()  # the portal's refresh waits for the change
        release.set()
        assert waiting.result(timeout=10).began == clock.now
    assert len(calls) == 2


def test_changes_during_a_reading_are_followed_by_one_more_not_one_each() -> None:
    clock, read, started, fresh = held()
    assert fresh.get().value == 1
    clock.now += 0.1
    fresh.changed()
    clock.now += 0.01
    fresh.changed()  # while the first is under way
    fresh.changed()
    assert len(started) == 1
    started[0]()  # ends: began before the last change, so one more is begun
    assert len(started) == 2
    young = fresh.young()
    assert young is not None and young.value == 2  # the poller has the newer one meanwhile
    started[1]()
    assert len(started) == 2  # nothing changed since: no more
    reading = fresh.get()
    assert (reading.value, reading.began) == (3, clock.now)
    assert read.calls == 3


def test_a_change_never_makes_young_give_a_reading_past_its_age() -> None:
    clock, _read, started, fresh = held()
    fresh.get()
    fresh.changed()
    clock.now += 1.01  # the reading begun for the change has not ended
    assert fresh.young() is None
    fresh.forget()  # a change made through the server
    started[0]()
    assert fresh.young() is None  # begun before the server's own change


def test_a_change_nobody_asks_about_begins_no_reading() -> None:
    """An idle server reads nothing for libvirt's changes; its next caller reads
    afresh."""
    clock, read, started, fresh = held()
    assert read.calls == 0
    fresh.changed()  # nobody ever asked
    assert started == []
    assert fresh.get().value == 1
    clock.now += 1.5  # past the age: nobody asked lately
    fresh.changed()
    assert started == [] and fresh.young() is None
    reading = fresh.get()
    assert (reading.value, reading.began) == (2, clock.now)
    assert read.calls == 2  # both by callers


def _thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, daemon=True).start()


class Timers:
    """A ``later`` the test fires by hand: each entry is (delay, work, cancelled)."""

    def __init__(self) -> None:
        self.due: list[tuple[float, Callable[[], None]]] = []
        self.cancelled = 0

    def __call__(self, delay_s: float, work: Callable[[], None]) -> Callable[[], None]:
        self.due.append((delay_s, work))

        def cancel() -> None:
            self.cancelled += 1
        return cancel

    def fire(self) -> float:
        delay, work = self.due.pop(0)
        work()
        return delay


def kept(keep_young_s: float) -> tuple[Clock, Counter, Timers, FreshReadings[int]]:
    """Readings (age 1 s, refreshed at 0.5 s) kept young for ``keep_young_s``, taken
    at once, their timers fired by the test."""
    clock, read, timers = Clock(), Counter(), Timers()
    fresh = FreshReadings(read, max_age_s=1.0, refresh_after_s=0.5, clock=clock,
                          background=inline, keep_young_s=keep_young_s, later=timers)
    return clock, read, timers, fresh


def fire_until(clock: Clock, timers: Timers, until: float = float("inf")) -> None:
    """Fire the timers one after another, the clock moved to each, while any is due
    and the clock is before ``until``."""
    while timers.due and clock.now + timers.due[0][0] < until:
        clock.now += timers.due[0][0]
        timers.fire()


def test_a_reading_asked_for_lately_is_kept_young() -> None:
    """A poller coming back within the window finds a young reading at once."""
    clock, read, timers, fresh = kept(30.0)
    fresh.start()
    assert fresh.get().value == 1
    assert [d for d, _ in timers.due] == [0.5]  # the next, when the first is due
    fire_until(clock, timers, 100.0 + 20.0)  # nobody asks for 20 s
    young = fresh.young()  # the poller is back
    assert young is not None and clock.now - young.began <= 0.5
    assert read.calls == 40


def test_keeping_young_ends_once_nobody_asked_for_the_window() -> None:
    clock, read, timers, fresh = kept(2.0)
    fresh.start()
    fresh.get()
    fire_until(clock, timers)
    assert clock.now == 102.0  # the timer due 2 s after the last caller read nothing
    assert read.calls == 4  # the first, then one every 0.5 s while under 2 s
    clock.now += 0.6
    assert fresh.young() is None  # the last, begun at 101.5, is too old: the caller waits


def test_stop_cancels_the_reading_kept_for_later() -> None:
    clock, read, timers, fresh = kept(30.0)
    fresh.start()
    fresh.get()
    fresh.stop()
    assert timers.cancelled == 1
    clock.now += 0.5
    timers.fire()  # a timer that fired anyway does nothing
    assert read.calls == 1
    fresh.get()
    assert timers.due == []  # and nothing more is kept


def test_a_server_without_keeping_schedules_nothing() -> None:
    timers = Timers()
    fresh = FreshReadings(Counter(), max_age_s=1.0, later=timers)
    fresh.start()
    fresh.get()
    assert timers.due == []


def test_readings_not_started_are_not_kept_young() -> None:
    """An app whose lifespan never ran (a test's) leaves no timer reading behind it."""
    timers = Timers()
    fresh = FreshReadings(Counter(), max_age_s=1.0, refresh_after_s=0.5, background=inline,
                          keep_young_s=30.0, later=timers)
    fresh.get()
    assert timers.due == []
    fresh.start()
    fresh.get()  # still young: nothing read, nothing kept
    assert timers.due == []


def test_a_primed_start_reads_at_once_and_keeps_it_young_for_the_window() -> None:
    """A server just started is about to be asked: its first callers find a reading."""
    clock, read, timers, fresh = kept(30.0)
    fresh.start(prime=True)
    assert read.calls == 1 and [d for d, _ in timers.due] == [0.5]
    fire_until(clock, timers, 100.0 + 29.0)  # nobody asks
    young = fresh.young()  # the first caller, 28.5 s after the start
    assert young is not None and clock.now - young.began <= 0.5
    assert read.calls == 58  # at the start, then every 0.5 s


def test_a_primed_start_nobody_asks_ends_its_readings_after_the_window() -> None:
    clock, read, timers, fresh = kept(2.0)
    fresh.start(prime=True)
    fire_until(clock, timers)
    assert clock.now == 102.0 and read.calls == 4
    clock.now += 0.6
    assert fresh.young() is None


def test_a_primed_start_without_keeping_reads_once() -> None:
    timers = Timers()
    read = Counter()
    fresh = FreshReadings(read, max_age_s=1.0, background=inline, later=timers)
    fresh.start(prime=True)
    assert read.calls == 1 and timers.due == []
    assert fresh.get().value == 1  # young: the caller is given it


def test_a_primed_start_while_a_reading_is_under_way_begins_no_other() -> None:
    clock, read, started, fresh = held()
    fresh.get()
    clock.now += 0.6
    assert fresh.young() is not None and len(started) == 1  # one begun ahead
    fresh.start(prime=True)
    assert len(started) == 1
    started.pop()()
    assert read.calls == 2

"""One reading shared by every request that arrives while it is young.

``GET /status`` asks every service host for a survey (a bulk stats call,
the DHCP leases, the node's load) and writes the time each answered to the
state database: tens to hundreds of milliseconds of libvirt calls. Asked by
many clients at once (dashboards polling, a portal page per user), the same
survey would be taken once per request, each slower for the others. So the
server keeps the last reading and hands it to every request that arrives
within ``max_age_s`` of the moment that reading began; a request that finds
none that young starts a new one, and requests arriving while it is taken
wait for it instead of starting their own (single flight). Under steady
requests the next reading is begun ahead, in the background, once the last
has reached ``refresh_after_s`` (the server's: half the allowed age), so
requests are answered from memory and none waits for libvirt.

A reading is never older than ``max_age_s`` when a request arrives: its
age is counted from when its survey *began*, so what it shows was read no
earlier than that.

Two kinds of change make a reading out of date before its age. A change
made through the server itself (a route or a job) is :meth:`forget`-ten:
no one is given a reading begun before it, so the next answer shows it. A
change libvirt reports (:meth:`changed`, from the live feed: another
client's ``up``, a guest shutting down) begins a new reading at once, or
right after the one under way; :meth:`get` waits for it (the portal, which
refreshes *because* of that change, must show it), while :meth:`young` still
gives the latest one until then, within its age (an API poller cannot know
of the change, and a burst of them, such as an ``up``'s defines and starts,
would otherwise hold every poller behind one reading after another).

While it is asked for, the reading is kept young: after each reading, the
next is begun ahead when it is due for refreshing, as long as a caller asked
within the last ``keep_young_s``. A client polling more often than that
(a dashboard every 10 s, a script between two runs of a load) is answered
from memory, instead of waiting for a survey of every service host each
time it comes back; a server nobody asks reads nothing, except in the
``keep_young_s`` after it starts, which count as asked: the first requests
to a server just started find a reading instead of all waiting for one.

The answer says when its reading began (``read_at``), so a client knows
how old what it sees is. What is cached is the whole site's reading;
each caller's answer is cut to what they may see afterwards
(:func:`corral.ops.visible.visible_status`), so the cache never mixes up
who sees what.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("corral.server")


@dataclass(frozen=True, slots=True)
class Reading(Generic[T]):
    """A value and the moment (``time.monotonic``) its reading began."""

    value: T
    began: float


@dataclass(slots=True)
class _Flight(Generic[T]):
    """A reading being taken: the requests waiting for it wait on ``done``."""

    began: float
    done: threading.Event = field(default_factory=threading.Event)
    reading: Reading[T] | None = None
    error: BaseException | None = None


class FreshReadings(Generic[T]):
    """``read()`` for any number of callers, each given a reading that began no
    more than ``max_age_s`` before it arrived.

    A caller that finds the latest reading older than ``refresh_after_s`` (but
    still young enough) is given it at once, and a new reading is begun in the
    background for those that follow: as long as a reading takes less than
    ``max_age_s - refresh_after_s``, no caller under steady load waits for one.
    At most one reading is taken at a time, unless one has been going on for
    longer than ``max_age_s`` (a service host that does not answer), or
    began before a change that a caller of :meth:`get` must see: such a
    caller may not be given it, so it begins its own.

    With ``keep_young_s``, between :meth:`start` and :meth:`stop` (the server's
    life), a reading that ends within that long after the last caller asked is
    followed by another begun when it is due for refreshing (by ``later``: a
    timer); the server's start counts as asking (``prime``). An app nobody
    started (a test's) keeps nothing running behind it.

    Thread-safe: the server's synchronous routes run on a thread pool. An
    error of ``read`` goes to the callers waiting for that reading; nothing
    keeps it, so the next caller tries again.
    """

    def __init__(
        self,
        read: Callable[[], T],
        max_age_s: float,
        refresh_after_s: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        background: Callable[[Callable[[], None]], None] | None = None,
        keep_young_s: float = 0.0,
        later: Later | None = None,
    ) -> None:
        refresh = max_age_s if refresh_after_s is None else refresh_after_s
        if not 0 <= refresh <= max_age_s:
            raise ValueError("need 0 <= refresh_after_s <= max_age_s")
        if keep_young_s < 0:
            raise ValueError("need keep_young_s >= 0")
        self._read = read
        self.max_age_s = max_age_s
        self.refresh_after_s = refresh
        self._clock = clock
        self._background = background or _daemon_thread
        self.keep_young_s = keep_young_s
        self._later = later or _timer
        self._asked = float("-inf")
        self._keep: _Keep | None = None
        self._stopped = True  # until start()
        self._lock = threading.Lock()
        self._latest: Reading[T] | None = None
        self._flight: _Flight[T] | None = None
        self._not_before = float("-inf")
        self._changed_at = float("-inf")

    def young(self) -> Reading[T] | None:
        """The latest reading if it is young enough for a caller arriving now, else
        None; never waits (for callers on an event loop, who then :meth:`get` on a
        thread). A reading due for refreshing, or begun before the last
        :meth:`changed`, is refreshed in the background; until that ends, the
        latest is still given."""
        arrived = self._clock()
        ahead: _Flight[T] | None = None
        with self._lock:
            self._asked = arrived
            latest = self._latest
            if latest is None or latest.began < max(arrived - self.max_age_s,
                                                    self._not_before):
                return None
            if self._flight is None and (arrived - latest.began >= self.refresh_after_s
                                         or latest.began < self._changed_at):
                ahead = self._flight = _Flight[T](arrived)
        if ahead is not None:
            self._background(partial(self._quietly, ahead))
        return latest

    def get(self) -> Reading[T]:
        """A reading that began no more than ``max_age_s`` before this call, and
        after the last :meth:`forget` and :meth:`changed`."""
        arrived = self._clock()
        ahead: _Flight[T] | None = None
        with self._lock:
            self._asked = arrived
            oldest = max(arrived - self.max_age_s, self._not_before, self._changed_at)
            latest, flight = self._latest, self._flight
            young = latest is not None and latest.began >= oldest
            if young:
                assert latest is not None
                if flight is None and arrived - latest.began >= self.refresh_after_s:
                    ahead = self._flight = _Flight[T](arrived)
            elif flight is None or flight.began < oldest:
                # none in flight, or one begun too long ago to be young enough
                flight = self._flight = _Flight[T](arrived)
                mine = True
            else:
                mine = False
        if young:
            assert latest is not None
            if ahead is not None:  # begun outside the lock: taking it takes the lock
                self._background(partial(self._quietly, ahead))
            return latest
        assert flight is not None
        if mine:
            return self._take(flight)
        flight.done.wait()
        if flight.error is not None:
            raise flight.error
        assert flight.reading is not None
        return flight.reading

    def settle(self, timeout_s: float) -> bool:
        """Wait (up to ``timeout_s``) for a reading being taken to end; True when
        none is. The server waits at shutdown, so no reading outlives it with
        connections to the service hosts still open."""
        with self._lock:
            flight = self._flight
        return flight is None or flight.done.wait(timeout_s)

    def forget(self) -> None:
        """Give no caller from now on a reading begun before now: after a change
        made through the server, its next answer shows it."""
        with self._lock:
            self._not_before = self._clock()
            self._latest = None

    def start(self, *, prime: bool = False) -> None:
        """Keep readings young from now on, while they are asked for.

        With ``prime``, as if a caller asked now: a first reading is begun at
        once (in the background) and kept young for ``keep_young_s``. A server
        that has just started is about to be asked (a portal reopened, the
        dashboards and scripts that polled the one before it); without a
        reading, the first requests would all wait for one survey of every
        service host, a new connection to each and two CPU samples apart."""
        with self._lock:
            self._stopped = False
            if not prime:
                return
            self._asked = now = self._clock()
            if self._flight is not None:
                return
            flight = self._flight = _Flight[T](now)
        self._background(partial(self._quietly, flight))

    def stop(self) -> None:
        """Keep no reading young from now on (the server is stopping)."""
        with self._lock:
            self._stopped = True
            keep, self._keep = self._keep, None
        if keep is not None and keep.cancel is not None:
            keep.cancel()

    def changed(self) -> None:
        """Something changed outside the server (libvirt reported it): begin a new
        reading now, or once the one under way ends, when a caller asked lately.
        :meth:`get` gives nothing begun before now; :meth:`young` gives the
        latest until the new one ends."""
        with self._lock:
            now = self._changed_at = self._clock()
            if self._flight is not None or not self._asked_lately(now):
                return  # followed by another when it ends (see _take), or nobody asks
            flight = self._flight = _Flight[T](now)
        self._background(partial(self._quietly, flight))

    def _asked_lately(self, now: float) -> bool:
        """Whether a caller asked within ``keep_young_s`` (at least ``max_age_s``):
        a change begins a reading only then, so one that nobody is asking for
        costs an idle server no survey (the next caller reads afresh)."""
        return now - self._asked < max(self.keep_young_s, self.max_age_s)

    def _quietly(self, flight: _Flight[T]) -> None:
        """A reading taken ahead: its error reaches those who waited for it, if any,
        and the server's log."""
        try:
            self._take(flight)
        except Exception:
            log.warning("a reading taken ahead failed; the next request reads again",
                        exc_info=True)

    def _take(self, flight: _Flight[T]) -> Reading[T]:
        try:
            flight.reading = Reading(self._read(), flight.began)
        except BaseException as error:
            flight.error = error
            raise
        finally:
            follow: _Flight[T] | None = None
            keep: _Keep | None = None
            due = 0.0
            with self._lock:
                latest = self._latest
                if flight.reading is not None and (latest is None
                                                   or flight.reading.began > latest.began):
                    self._latest = latest = flight.reading
                if self._flight is flight:
                    self._flight = None
                    if self._changed_at > flight.began and self._asked_lately(self._clock()) and (
                            latest is None or latest.began < self._changed_at):
                        # a change came while it was taken: one more, for all of them
                        follow = self._flight = _Flight[T](self._clock())
                    elif latest is not None and self._keeping():
                        keep = self._keep = _Keep()
                        due = latest.began + self.refresh_after_s - self._clock()
            flight.done.set()
            if follow is not None:
                self._background(partial(self._quietly, follow))
            if keep is not None:
                keep.cancel = self._later(max(due, 0.0), partial(self._kept, keep))
        return flight.reading

    def _keeping(self) -> bool:
        """Whether the reading is still to be kept young (under the lock): a caller
        asked lately, none is kept already, and the server is not stopping."""
        return (not self._stopped and self._keep is None and self._flight is None
                and self._clock() - self._asked < self.keep_young_s)

    def _kept(self, keep: _Keep) -> None:
        """The reading kept young is due: begin the next one, unless one is under way
        (its end keeps it young in turn) or no caller asked lately."""
        with self._lock:
            if self._keep is not keep:
                return  # stopped
            self._keep = None
            if not self._keeping():
                return
            flight = self._flight = _Flight[T](self._clock())
        self._quietly(flight)


@dataclass(slots=True)
class _Keep:
    """A reading to begin later, to keep the latest young; ``cancel`` stops it."""

    cancel: Callable[[], None] | None = None


Later = Callable[[float, Callable[[], None]], Callable[[], None]]
"""``later(delay_s, work)`` runs ``work`` once ``delay_s`` has passed and returns
what cancels it."""


def _timer(delay_s: float, work: Callable[[], None]) -> Callable[[], None]:
    """Run ``work`` after ``delay_s`` on a timer thread that never keeps the
    process alive; return its ``cancel``."""
    timer = threading.Timer(delay_s, work)
    timer.name, timer.daemon = "corral-fresh-keep", True
    timer.start()
    return timer.cancel


def _daemon_thread(work: Callable[[], None]) -> None:
    """Run ``work`` on a thread of its own that never keeps the process alive."""
    threading.Thread(target=work, name="corral-fresh-reading", daemon=True).start()

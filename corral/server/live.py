"""Changes of VMs and service hosts as they happen, for whoever is watching.

:class:`LiveFeed` watches every service host of the site through libvirt's
domain events (:mod:`corral.backends.libvirt.events`) and hands each change
to every subscriber, an asyncio consumer such as the portal's server-sent
event stream. A change only says *what* changed (service host, domain,
event); the subscriber reads the state it shows through the operations, with
the caller's own visibility. A slow subscriber loses changes, never blocks
the others: its queue is bounded, and an overflow is reported to it as one
``resync`` change so that it reads everything again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from corral.backends.libvirt.events import DomainEvents
from corral.config import SiteConfig

QUEUE_LIMIT = 256


@dataclass(frozen=True)
class LiveChange:
    """One change: a domain's event, or a service host's (``domain`` None:
    ``connected``, ``unreachable``), or ``resync`` after changes were lost."""

    service_host: str
    domain: str | None
    event: str
    at: float = field(default_factory=time.time)


class Subscription:
    """The changes one consumer receives, in order, from the moment it subscribed."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queue: asyncio.Queue[LiveChange] = asyncio.Queue(QUEUE_LIMIT)
        self._overflowed = False

    def offer(self, change: LiveChange) -> None:
        """Queue ``change`` (on the consumer's loop); on overflow, one ``resync``."""
        if self._queue.full():
            self._overflowed = True
            return
        if self._overflowed:
            self._overflowed = False
            self._queue.put_nowait(LiveChange(change.service_host, None, "resync"))
            if self._queue.full():
                return
        self._queue.put_nowait(change)

    async def next(self, timeout_s: float | None = None) -> LiveChange | None:
        """The next change, or None when ``timeout_s`` passes without one."""
        if not self._queue.empty():
            return self._queue.get_nowait()
        try:
            return await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None

    def __aiter__(self) -> AsyncIterator[LiveChange]:
        return self._changes()

    async def _changes(self) -> AsyncIterator[LiveChange]:
        while True:
            yield await self._queue.get()


class LiveFeed:
    """Domain and host changes of every service host of ``site``."""

    def __init__(self, site: SiteConfig, on_change: Callable[[], None] | None = None) -> None:
        """``on_change`` is called (on libvirt's event thread) before each change is
        handed out: the server begins a new shared status reading there, which a
        page refreshed for the change waits for, so it shows the change."""
        self._on_change = on_change
        self._watchers = [DomainEvents(name, host.uri, self._publish)
                          for name, host in sorted(site.service_hosts.items())]
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()
        self.started = False

    def start(self) -> None:
        """Begin watching (each service host in a thread of its own)."""
        for watcher in self._watchers:
            watcher.start()
        self.started = True

    def stop(self) -> None:
        for watcher in self._watchers:
            watcher.stop()
        self.started = False

    def reachable(self) -> dict[str, bool]:
        """Whether each service host's event connection is up now."""
        return {w.service_host: w.connected for w in self._watchers}

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """Changes from now on, for as long as the context lasts."""
        subscription = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                self._subscribers.discard(subscription)

    def _publish(self, service_host: str, domain: str | None, event: str) -> None:
        """Called on libvirt's event thread: hand the change to each consumer's loop."""
        change = LiveChange(service_host, domain, event)
        if self._on_change is not None:
            self._on_change()
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            # A closed loop's consumer is ending; it unsubscribes as it goes.
            with contextlib.suppress(RuntimeError):
                subscription.loop.call_soon_threadsafe(subscription.offer, change)

"""libvirt's domain events, watched over a connection of their own.

The server shows VM states as they change, not when someone next asks: each
service host's libvirtd pushes an event when one of its domains starts,
stops, pauses, resumes, reboots, has its memory or its metadata changed
(Corral's own marks, such as the start time written right after a start), and
:class:`DomainEvents` hands each one to a callback. Polling would either lag
or cost a survey per second per viewer.

libvirt delivers events through an *event loop implementation* that is
registered once per process and must be registered before the watching
connection is opened; its loop then has to run for as long as the process
lives (remote connections' keepalives depend on it). That registration is
libvirt's own process-wide state, like its error handler: the only state
kept at module level here is whether this process has done it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import libvirt

# Imported for its side effect: libvirt's errors reach us as exceptions only,
# not also as lines on stderr (a host retried every few seconds would flood it).
from corral.backends.libvirt import connection  # noqa: F401

log = logging.getLogger("corral.events")

# One change: (service host, domain name or None for the host itself, event).
# Host events are "connected" and "unreachable".
Notify = Callable[[str, str | None, str], None]

_LIFECYCLE = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined",
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "suspended",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "resumed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}

_loop_guard = threading.Lock()
_loop_running = False
RETRY_S = 5.0


def ensure_event_loop() -> None:
    """Register libvirt's default event loop and run it in a daemon thread, once per
    process. Connections opened afterwards can deliver events."""
    global _loop_running
    with _loop_guard:
        if _loop_running:
            return
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=_run_event_loop, name="libvirt-events", daemon=True).start()
        _loop_running = True


def _run_event_loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except libvirt.libvirtError as exc:  # pragma: no cover - libvirt internal failure
            log.warning("libvirt event loop: %s", exc)


class DomainEvents:
    """Watch one service host's domains; reconnect after the connection drops.

    A thread of its own opens the connection (opening may block for as long
    as a host takes to fail), registers the callbacks and waits; a host that
    cannot be reached is retried every ``retry_s`` seconds, and each change
    of reachability is reported once as a host event.
    """

    def __init__(self, service_host: str, uri: str, notify: Notify,
                 retry_s: float = RETRY_S) -> None:
        self.service_host = service_host
        self.uri = uri
        self.retry_s = retry_s
        self.connected = False
        self.last_error: str | None = None
        self._notify = notify
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        ensure_event_loop()
        self._thread = threading.Thread(target=self._watch, daemon=True,
                                        name=f"events-{self.service_host}")
        self._thread.start()

    def stop(self, wait_s: float = 2.0) -> None:
        """Stop watching; a thread still opening its connection is left to give up."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(wait_s)

    def _watch(self) -> None:
        reported: bool | None = None
        while not self._stop.is_set():
            self._wake.clear()
            try:
                conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                self.last_error = exc.get_error_message() or str(exc)
                if reported is not False:
                    self._emit(None, "unreachable")
                    reported = False
                self._stop.wait(self.retry_s)
                continue
            callbacks = self._register(conn)
            self.connected, self.last_error, reported = True, None, True
            self._emit(None, "connected")
            self._wake.wait()
            self.connected = False
            self._release(conn, callbacks)
            if not self._stop.is_set():
                self._emit(None, "unreachable")
                reported = False
                self._stop.wait(self.retry_s)

    def _register(self, conn: libvirt.virConnect) -> list[int]:
        def lifecycle(_c: Any, dom: libvirt.virDomain, event: int, _detail: int,
                      _opaque: Any) -> None:
            self._emit(dom.name(), _LIFECYCLE.get(event, "changed"))

        def rebooted(_c: Any, dom: libvirt.virDomain, _opaque: Any) -> None:
            self._emit(dom.name(), "rebooted")

        def ballooned(_c: Any, dom: libvirt.virDomain, _actual: int, _opaque: Any) -> None:
            self._emit(dom.name(), "memory")

        def tuned(_c: Any, dom: libvirt.virDomain, _params: Any, _opaque: Any) -> None:
            self._emit(dom.name(), "tuned")

        def annotated(_c: Any, dom: libvirt.virDomain, _kind: int, _uri: str | None,
                      _opaque: Any) -> None:
            self._emit(dom.name(), "metadata")

        wanted: list[tuple[int, Callable[..., None]]] = [
            (libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle),
            (libvirt.VIR_DOMAIN_EVENT_ID_REBOOT, rebooted),
            (libvirt.VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE, ballooned),
            (libvirt.VIR_DOMAIN_EVENT_ID_TUNABLE, tuned),
            # Corral writes a guest's start time into its live definition right
            # after starting it: a reading begun on the start event may miss it.
            (libvirt.VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, annotated),
        ]
        ids = []
        for event_id, callback in wanted:
            try:
                ids.append(conn.domainEventRegisterAny(None, event_id, callback, None))
            except libvirt.libvirtError as exc:  # a driver without that event
                log.debug("%s: event %d not available: %s", self.service_host, event_id, exc)
        # Drivers without a connection to lose (test://) may refuse a close callback.
        with contextlib.suppress(libvirt.libvirtError):
            conn.registerCloseCallback(lambda _c, _reason, _o: self._wake.set(), None)
        return ids

    def _release(self, conn: libvirt.virConnect, callbacks: list[int]) -> None:
        for callback in callbacks:
            with contextlib.suppress(libvirt.libvirtError):
                conn.domainEventDeregisterAny(callback)
        with contextlib.suppress(libvirt.libvirtError):
            conn.unregisterCloseCallback()
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()

    def _emit(self, domain: str | None, event: str) -> None:
        try:
            self._notify(self.service_host, domain, event)
        except Exception:  # a subscriber's failure must not end the watch
            log.exception("%s: event %s of %s not delivered", self.service_host, event, domain)

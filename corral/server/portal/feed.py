"""When a live page re-reads what it shows: at every change, and every few seconds.

A change (a domain event of a service host, from the server's live feed)
makes the page read its rows again at once; a burst of changes (a project
starting twenty VMs) is read once, after it settles. Between changes the
rows are read every :data:`PERIOD_S` anyway, so uptime, CPU% and the
staleness of a silent service host move on their own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Protocol

PERIOD_S = 5.0
SETTLE_S = 0.25
MAX_SETTLE_S = 1.0  # a steady stream of changes still refreshes the page


class Changes(Protocol):
    """A subscription to changes: the next one, or None when ``timeout_s`` passed."""

    async def next(self, timeout_s: float | None = None) -> object | None: ...


async def refreshes(changes: Changes, period_s: float = PERIOD_S,
                    settle_s: float = SETTLE_S) -> AsyncIterator[str]:
    """``change`` after each settled burst of changes, ``tick`` when ``period_s``
    passed without one; endless (the stream ends when its client goes)."""
    due = time.monotonic() + period_s
    while True:
        change = await changes.next(max(0.0, due - time.monotonic()))
        if change is None:
            due = time.monotonic() + period_s
            yield "tick"
            continue
        settled_by = time.monotonic() + MAX_SETTLE_S
        while time.monotonic() < settled_by and await changes.next(settle_s) is not None:
            pass
        due = time.monotonic() + period_s
        yield "change"


def sse(event: str, html: str) -> str:
    """One server-sent event whose data is ``html`` (each line a ``data:`` line)."""
    lines = html.splitlines() or [""]
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"

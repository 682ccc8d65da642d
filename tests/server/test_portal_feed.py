"""When the live overview re-reads its rows: at each settled burst of changes, and
periodically between them."""

from __future__ import annotations

import asyncio
import time

from corral.server.portal.feed import refreshes, sse


class Changes:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    async def next(self, timeout_s: float | None = None) -> object | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout_s)
        except TimeoutError:
            return None


def test_a_burst_of_changes_is_one_refresh_and_quiet_is_a_tick() -> None:
    async def run() -> list[tuple[str, float]]:
        changes = Changes()
        ticks = refreshes(changes, period_s=0.5, settle_s=0.05)
        began = time.monotonic()
        seen = [(await anext(ticks), time.monotonic() - began)]
        for n in range(5):
            changes.queue.put_nowait(f"domain {n}")
        began = time.monotonic()
        seen.append((await anext(ticks), time.monotonic() - began))
        began = time.monotonic()
        seen.append((await anext(ticks), time.monotonic() - began))
        assert changes.queue.empty()
        return seen

    (first, waited), (second, settled), (third, quiet) = asyncio.run(run())
    assert first == "tick" and 0.45 < waited < 1.0
    assert second == "change" and settled < 0.4
    assert third == "tick" and 0.45 < quiet < 1.0


def test_an_event_carries_every_line_of_its_html() -> None:
    assert sse("vms", "<tr>\n<td>a</td>\n</tr>") == (
        "event: vms\ndata: <tr>\ndata: <td>a</td>\ndata: </tr>\n\n")
    assert sse("ended", "") == "event: ended\ndata: \n\n"

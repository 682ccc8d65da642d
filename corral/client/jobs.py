"""Following a job of the server: its events into our Reporter, its end as our result.

``GET /api/v1/jobs/{id}/events`` streams the events the operation reported
on the server (``note``, ``warning``, ``progress``) as server-sent events,
then ``end`` with the finished job. Each is played into the CLI's own
:class:`~corral.ops.reporting.Reporter`, so a remote ``up`` shows the same
notes and progress as a local one. A dropped stream is reopened with
``Last-Event-ID`` (events are never shown twice); Ctrl-C leaves the job
running on the server and says which it is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from corral.client.transport import Transport, error_from_body, unreachable
from corral.errors import CorralError, Outcome, ServerUnreachable
from corral.ops.reporting import Progress, Reporter

T = TypeVar("T")
RECONNECTS = 5
RECONNECT_PAUSE_S = 1.0


@dataclass(frozen=True)
class Event:
    """One server-sent event: ``id`` (the job event's seq), ``event`` and ``data``."""

    id: int | None
    kind: str
    data: Any


def parse_events(lines: Iterator[str]) -> Iterator[Event]:
    """Server-sent events from the stream's lines (comments skipped)."""
    seq: int | None = None
    kind = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield Event(seq, kind, json.loads("\n".join(data)))
            seq, kind, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id" and value.isdigit():
            seq = int(value)
        elif name == "event":
            kind = value
        elif name == "data":
            data.append(value)


@dataclass
class Replay:
    """Plays job events into a Reporter: notes, warnings and progress bars."""

    reporter: Reporter
    _stack: ExitStack = field(default_factory=ExitStack)
    _bars: dict[str, Progress] = field(default_factory=dict)

    def play(self, event: Event) -> None:
        message = str(event.data.get("message", ""))
        if event.kind == "note":
            self.reporter.note(message)
        elif event.kind == "warning":
            self.reporter.warn(message)
        elif event.kind == "progress":
            self._progress(message, event.data.get("data") or {})

    def _progress(self, message: str, data: dict[str, Any]) -> None:
        description = str(data.get("description", message))
        done, total = int(data.get("done", 0)), int(data.get("total", 0))
        if done == 0 or description not in self._bars:
            self._bars[description] = self._stack.enter_context(
                self.reporter.progress(description, total))
            if done == 0:
                return
        self._bars[description].advance("" if message == description else message)

    def close(self) -> None:
        self._stack.close()


def follow(transport: Transport, job: dict[str, Any], reporter: Reporter,
           result: Callable[[dict[str, Any]], T]) -> T:
    """Wait for ``job`` (a 202 answer) to end, showing its events; its result as
    ``result`` decodes it, or its error raised as on this machine."""
    job_id = str(job["id"])
    replay = Replay(reporter)
    try:
        final = _events_until_end(transport, job_id, replay)
    except KeyboardInterrupt:
        left = CorralError(
            f"interrupted: job {job_id} ({job.get('operation')} {job.get('target')}) "
            "continues on the server",
            hint=f"see how it ends: GET {transport.remote.url}/api/v1/jobs/{job_id}",
        )
        left.outcome = Outcome.INTERRUPTED
        raise left from None
    finally:
        replay.close()
    return finished(final, transport, result)


def finished(final: dict[str, Any], transport: Transport,
             result: Callable[[dict[str, Any]], T]) -> T:
    """A finished job's result, or its error raised."""
    state = final.get("state")
    if state == "done":
        return result(final["result"])
    if state == "failed" and isinstance(final.get("error"), dict):
        raise error_from_body(final["error"], 0, transport.remote.url, transport.names)
    error = CorralError(f"job {final.get('id')} was {state}: the server stopped while it "
                        "ran", hint="run the same command again: operations converge")
    error.outcome = Outcome.INTERRUPTED
    raise error


def _events_until_end(transport: Transport, job_id: str, replay: Replay) -> dict[str, Any]:
    """Every event of the job, reconnecting with Last-Event-ID; the ``end`` data."""
    after: int | None = None
    failures = 0
    while True:
        headers = {"Accept": "text/event-stream"}
        if after is not None:
            headers["Last-Event-ID"] = str(after)
        try:
            with transport.stream(f"/jobs/{job_id}/events", headers) as answer:
                for event in parse_events(answer.iter_lines()):
                    if event.kind == "end":
                        return dict(event.data)
                    replay.play(event)
                    if event.id is not None:
                        after = event.id
                    failures = 0
            dropped: Exception = ServerUnreachable(
                f"{transport.remote.url}: the events of job {job_id} ended before the job")
        except (ServerUnreachable, httpx.TransportError) as error:
            dropped = error
        failures += 1
        if failures > RECONNECTS:
            lost = (dropped if isinstance(dropped, ServerUnreachable)
                    else unreachable(transport.remote.url, dropped))
            lost.hint = f"job {job_id} may still be running on the server"
            raise lost from None
        time.sleep(RECONNECT_PAUSE_S)

"""Following a job through the server: its events into a Reporter, a dropped stream
reopened where it stopped, Ctrl-C leaving the job to run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from remote_support import live_server
from server_support import LAB, Cast

from corral.client import decode
from corral.client.jobs import follow
from corral.client.transport import Remote, Transport
from corral.errors import CorralError


class Recorder:
    """A Reporter that keeps what it was told, in order."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str]] = []

    def note(self, message: str) -> None:
        self.told.append(("note", message))

    def warn(self, message: str) -> None:
        self.told.append(("warning", message))

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Any]:
        self.told.append(("progress", description))
        recorder = self

        class Bar:
            def advance(self, label: str = "") -> None:
                recorder.told.append(("progress", label or description))

        yield Bar()


class DroppingTransport(Transport):
    """Its first event stream breaks after the first event; it keeps the headers
    of every stream it opened."""

    def __init__(self, remote: Remote) -> None:
        super().__init__(remote)
        self.asked: list[dict[str, str]] = []

    @contextmanager
    def stream(self, path: str, headers: Any) -> Iterator[httpx.Response]:
        self.asked.append(dict(headers))
        with super().stream(path, headers) as answer:
            if len(self.asked) > 1:
                yield answer
                return
            lines = answer.iter_lines()

            def broken() -> Iterator[str]:
                for line in lines:
                    yield line
                    if line == "":
                        raise httpx.RemoteProtocolError("peer closed connection")

            answer.iter_lines = broken  # type: ignore[method-assign]
            yield answer


@pytest.fixture
def url(app: FastAPI) -> Iterator[str]:
    with live_server(app) as found:
        yield found


def _submit(url: str, cast: Cast) -> dict[str, Any]:
    accepted = httpx.post(f"{url}/api/v1/projects/up", headers=cast.headers("owner"),
                          json={"text": LAB, "name": "lab.corral"}, timeout=30)
    assert accepted.status_code == 202, accepted.text
    return dict(accepted.json())


def test_a_dropped_event_stream_goes_on_after_the_last_event_seen(url: str,
                                                                  cast: Cast) -> None:
    job = _submit(url, cast)
    transport = DroppingTransport(Remote(url, cast.tokens["owner"]))
    recorder = Recorder()
    result = follow(transport, job, recorder, decode.applied)
    assert result.project == "lab" and result.ok
    events = httpx.get(f"{url}/api/v1/jobs/{job['id']}", headers=cast.headers("owner"),
                       timeout=30).json()["events"]
    assert len(transport.asked) == 2
    assert "Last-Event-ID" not in transport.asked[0]
    assert transport.asked[1]["Last-Event-ID"] == str(events[0]["seq"])
    assert recorder.told, "the job reported nothing"
    # Every event once, in order (a bar's opening event and each step).
    assert recorder.told == [(e["kind"], e["message"]) for e in events]


def test_ctrl_c_leaves_the_job_running_and_names_it(url: str, cast: Cast,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    job = _submit(url, cast)
    transport = Transport(Remote(url, cast.tokens["owner"]))

    def interrupted(*_args: Any, **_kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(transport, "stream", interrupted)
    with pytest.raises(CorralError) as left:
        follow(transport, job, Recorder(), decode.applied)
    assert left.value.exit_code == 130
    assert left.value.message == f"interrupted: job {job['id']} (up lab) continues on the server"
    assert left.value.hint == f"see how it ends: GET {url}/api/v1/jobs/{job['id']}"

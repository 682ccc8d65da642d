"""The server's readings of the site share one session: kept from one reading to
the next and shared by readings that overlap, retired after a reading in
which a service host was silent, and closed when the server stops."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_support import write_site

import corral.server.state as server_state_module
from corral.config import SiteConfig, parse_site_config
from corral.ops.session import Session
from corral.ops.status import StatusReport
from corral.server.state import SiteReader


class Opened:
    """Sessions a reader opened, and which of them were closed."""

    def __init__(self, site: SiteConfig) -> None:
        self.site = site
        self.sessions: list[Session] = []
        self.closed: list[Session] = []

    def __call__(self) -> Session:
        session = Session(self.site)
        real_close = session.close

        def close() -> None:
            self.closed.append(session)
            real_close()

        session.close = close  # type: ignore[method-assign]
        self.sessions.append(session)
        return session


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[Opened]:
    site = write_site(tmp_path)
    keeper = Session(site)
    keeper.backend("local").host_info()  # keeps test:///default's state alive
    yield Opened(site)
    keeper.close()


def test_readings_one_after_another_keep_one_session(opened: Opened) -> None:
    reader = SiteReader(opened)
    for _ in range(3):
        assert not reader.read().silent
    assert (len(opened.sessions), opened.closed) == (1, [])
    assert reader.close(5)
    assert opened.closed == opened.sessions


def test_overlapping_readings_share_the_session(
    opened: Opened, monkeypatch: pytest.MonkeyPatch
) -> None:
    both_in = threading.Barrier(2, timeout=30)
    real = server_state_module.status_report

    def together(session: Session, project: str | None) -> StatusReport:
        both_in.wait()  # neither reads until the other is reading too
        return real(session, project)

    monkeypatch.setattr(server_state_module, "status_report", together)
    reader = SiteReader(opened)
    answers: list[StatusReport] = []
    threads = [threading.Thread(target=lambda: answers.append(reader.read()))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 2
    assert (len(opened.sessions), opened.closed) == (1, [])
    assert reader.close(5)
    assert opened.closed == opened.sessions


def test_a_reading_with_a_silent_service_host_retires_its_session(tmp_path: Path) -> None:
    site = write_site(tmp_path)
    assert site.source is not None
    text = site.source.read_text() + '\n[service_hosts.gone]\nuri = "test+tcp://127.0.0.1:1/default"\n'
    site.source.write_text(text)
    opened = Opened(parse_site_config(text, site.source))
    reader = SiteReader(opened)
    for count in (1, 2):
        assert "gone" in reader.read().silent
        assert (len(opened.sessions), len(opened.closed)) == (count, count)
    assert reader.close(5)

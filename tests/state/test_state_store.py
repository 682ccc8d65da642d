"""The state store on a real SQLite file and on PostgreSQL (``state_url``), including
several connections and processes at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from corral.errors import BackendError, ConfigError, NotFoundError
from corral.state import StateStore, current_user


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "state.db"


@pytest.fixture
def store(state_url: str):
    with StateStore(state_url) as opened:
        yield opened


@pytest.fixture
def sqlite_store(db_path: Path):
    with StateStore(db_path) as opened:
        yield opened


# -- projects -------------------------------------------------------------------


def test_project_round_trip(store: StateStore) -> None:
    before = datetime.now(UTC)
    recorded = store.record_project("lab", "/srv/lab.corral", '{"project": "lab"}', "h1")
    assert recorded == store.get_project("lab")
    assert recorded.name == "lab"
    assert recorded.source_path == "/srv/lab.corral"
    assert recorded.model_json == '{"project": "lab"}'
    assert recorded.model_hash == "h1"
    assert recorded.created_at == recorded.updated_at
    assert before <= recorded.created_at <= datetime.now(UTC)


def test_recording_again_replaces_but_keeps_creation_time(store: StateStore) -> None:
    first = store.record_project("lab", Path("/srv/lab.corral"), "{}", "h1")
    second = store.record_project("lab", Path("/srv/lab2.corral"), '{"x": 1}', "h2")
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert (second.source_path, second.model_json, second.model_hash) == (
        "/srv/lab2.corral",
        '{"x": 1}',
        "h2",
    )
    assert len(store.list_projects()) == 1


def test_unknown_project_is_none(store: StateStore) -> None:
    assert store.get_project("never") is None


def test_list_and_forget(store: StateStore) -> None:
    for name in ("zoo", "alpha", "mid"):
        store.record_project(name, f"/{name}.corral", "{}", name)
    assert [p.name for p in store.list_projects()] == ["alpha", "mid", "zoo"]
    assert store.forget_project("mid") is True
    assert store.forget_project("mid") is False
    assert [p.name for p in store.list_projects()] == ["alpha", "zoo"]


# -- operation log ----------------------------------------------------------------


def test_log_newest_first_filtered_and_limited(store: StateStore) -> None:
    for index in range(5):
        store.log_operation("a", "start", f"a.h{index}", "ok", f"step {index}")
    store.log_operation("b", "stop", "b.x", "error", "no such domain", user="alice")

    newest = store.operations()
    assert [op.target for op in newest] == ["b.x", "a.h4", "a.h3", "a.h2", "a.h1", "a.h0"]
    assert newest[0].user == "alice" and newest[0].outcome == "error"
    assert newest[1].user == current_user()
    assert [op.detail for op in store.operations("a", limit=2)] == ["step 4", "step 3"]
    assert store.operations("nobody") == []


def test_log_survives_forgetting_the_project(store: StateStore) -> None:
    store.record_project("lab", "/lab.corral", "{}", "h")
    store.log_operation("lab", "remove", "lab", "ok")
    store.forget_project("lab")
    assert [op.action for op in store.operations("lab")] == ["remove"]


def test_operation_context_records_ok_with_duration(store: StateStore) -> None:
    with store.operation("lab", "up", "lab") as note:
        running = store.operations("lab")
        assert [op.outcome for op in running] == ["started"]
        assert running[0].duration_s is None
        time.sleep(0.05)
        note.detail = "3 hosts started"
    (entry,) = store.operations("lab")
    assert entry.outcome == "ok"
    assert entry.detail == "3 hosts started"
    assert entry.action == "up" and entry.target == "lab"
    assert entry.duration_s is not None and entry.duration_s >= 0.05


def test_operation_context_records_error_and_reraises(store: StateStore) -> None:
    failure = NotFoundError("domain lab-web not found")
    with pytest.raises(NotFoundError) as caught, store.operation("lab", "start", "lab.web") as note:
        note.detail = "starting"
        raise failure
    assert caught.value is failure
    (entry,) = store.operations("lab")
    assert entry.outcome == "error"
    assert entry.detail == "starting: domain lab-web not found"
    assert entry.duration_s is not None


# -- the file -------------------------------------------------------------------


def test_file_and_directory_are_created_in_wal_mode(db_path: Path) -> None:
    assert not db_path.parent.exists()
    with StateStore(db_path) as store:
        store.log_operation("p", "a", "t", "ok")
    assert db_path.is_file()
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_losing_the_database_breaks_nothing(db_path: Path) -> None:
    with StateStore(db_path) as store:
        store.record_project("lab", "/lab.corral", "{}", "h")
    for leftover in db_path.parent.iterdir():
        leftover.unlink()
    with StateStore(db_path) as fresh:
        assert fresh.get_project("lab") is None
        assert fresh.operations() == []
        fresh.record_project("lab", "/lab.corral", "{}", "h2")
        assert fresh.get_project("lab") is not None


def test_corrupt_file_is_one_clear_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not an sqlite database" * 100)
    with pytest.raises(BackendError) as caught:
        StateStore(db_path)
    assert caught.value.message == f"state database {db_path}: file is not a database"
    assert caught.value.hint is not None and "move it aside to start afresh" in caught.value.hint


def test_unusable_directory_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as caught:
        StateStore(blocker / "state.db")
    assert caught.value.message.startswith(f"state database directory {blocker} is not usable")


def test_a_sqlite_url_is_the_same_database_as_its_path(db_path: Path) -> None:
    with StateStore(db_path) as by_path:
        by_path.record_project("lab", "/lab.corral", "{}", "h")
    with StateStore(f"sqlite:///{db_path}") as by_url:
        assert by_url.path == db_path and by_url.name == str(db_path)
        assert by_url.get_project("lab") is not None
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "'not a url' is not a database URL"),
        ("mysql://u:secret@db/x", "dialect 'mysql' is not supported (use sqlite or postgresql)"),
        ("postgresql+nosuchdriver://u:secret@db/corral", "its driver is not installed"),
    ],
)
def test_an_unusable_url_is_a_config_error_without_its_password(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        StateStore(url)
    assert message in caught.value.message
    assert "secret" not in caught.value.message


def test_a_database_made_before_users_gains_their_tables_and_keeps_its_rows(
    db_path: Path,
) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as raw:  # the schema as it was before users existed
        raw.execute("CREATE TABLE projects (name VARCHAR(200) PRIMARY KEY, source_path TEXT, "
                    "model_json TEXT, model_hash VARCHAR(128), created_at DATETIME, "
                    "updated_at DATETIME)")
        raw.execute("INSERT INTO projects VALUES ('old', '/old.corral', '{}', 'h', "
                    "'2025-01-01 00:00:00', '2025-01-01 00:00:00')")
    with StateStore(db_path) as store:
        assert store.get_project("old") is not None
    with sqlite3.connect(db_path) as raw:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "api_tokens", "project_owners", "project_shares", "audit_log"} <= tables


# -- concurrency ----------------------------------------------------------------


def test_two_stores_on_one_database_see_each_other(state_url: str) -> None:
    with StateStore(state_url) as first, StateStore(state_url) as second:
        first.record_project("lab", "/lab.corral", "{}", "h1")
        assert second.get_project("lab") is not None
        second.record_project("lab", "/lab.corral", "{}", "h2")
        record = first.get_project("lab")
        assert record is not None and record.model_hash == "h2"


def test_concurrent_writers_in_threads_lose_nothing(state_url: str) -> None:
    stores = [StateStore(state_url) for _ in range(2)]
    start = threading.Barrier(len(stores))

    def write(index: int) -> None:
        start.wait()
        for step in range(100):
            stores[index].log_operation(f"p{index}", "step", str(step), "ok")
            stores[index].record_project(f"p{index}", "/f", "{}", str(step))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index in range(len(stores)):
        assert len(stores[0].operations(f"p{index}", limit=1000)) == 100
        record = stores[1].get_project(f"p{index}")
        assert record is not None and record.model_hash == "99"
    for store in stores:
        store.close()


def _write_from_process(url: str, project: str, count: int) -> None:
    with StateStore(url) as store:
        for step in range(count):
            with store.operation(project, "step", str(step)):
                pass


def test_concurrent_writer_processes_lose_nothing(state_url: str) -> None:
    StateStore(state_url).close()
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_write_from_process, args=(state_url, f"p{i}", 50))
        for i in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    with StateStore(state_url) as store:
        entries = store.operations(limit=1000)
    assert len(entries) == 150
    assert {op.outcome for op in entries} == {"ok"}
    assert {op.project for op in entries} == {"p0", "p1", "p2"}


def test_writer_waits_for_a_held_lock_instead_of_failing(
    sqlite_store: StateStore, db_path: Path
) -> None:
    store = sqlite_store
    holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute(
        "INSERT INTO operations (started_at, project, action, target, outcome, "
        "detail, user) VALUES ('2000-01-01 00:00:00', 'x', 'hold', 'x', 'ok', '', 'x')"
    )
    releaser = threading.Timer(0.5, holder.execute, args=("COMMIT",))
    releaser.start()
    began = time.monotonic()
    store.log_operation("lab", "start", "lab.web", "ok")
    waited = time.monotonic() - began
    releaser.join()
    holder.close()
    assert waited >= 0.4
    assert [op.action for op in store.operations(limit=2)] == ["start", "hold"]


def test_open_reader_does_not_block_the_writer(sqlite_store: StateStore, db_path: Path) -> None:
    store = sqlite_store
    store.log_operation("lab", "first", "lab", "ok")
    reader = sqlite3.connect(db_path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM operations").fetchone() == (1,)
    began = time.monotonic()
    store.log_operation("lab", "second", "lab", "ok")
    assert time.monotonic() - began < 1.0
    assert reader.execute("SELECT count(*) FROM operations").fetchone() == (1,)
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM operations").fetchone() == (2,)
    reader.close()


def _open_at_once(url: str, start: Any) -> None:
    start.wait()
    with StateStore(url) as store:
        store.log_operation("lab", "open", "lab", "ok")


def test_processes_creating_the_schema_at_once_all_succeed(state_url: str) -> None:
    """Several servers starting together on an empty database: one creates each table,
    the others find it made (no "already exists" race)."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    openers = [context.Process(target=_open_at_once, args=(state_url, start)) for _ in range(3)]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join(timeout=60)
        assert opener.exitcode == 0
    with StateStore(state_url) as store:
        assert len(store.operations()) == 3


def test_large_text_and_exact_times_round_trip(store: StateStore) -> None:
    model = '{"hosts": "' + "ü€𝄞" * 300_000 + '"}'
    recorded = store.record_project("lab", "/lab.corral", model, "h" * 128)
    again = store.get_project("lab")
    assert again is not None and again.model_json == model and again.model_hash == "h" * 128
    assert again.created_at == recorded.created_at and again.created_at.microsecond == (
        recorded.created_at.microsecond)


def test_contacts_of_many_service_hosts_are_written_at_once_keeping_their_facts(
    tmp_path: Path,
) -> None:
    with StateStore(tmp_path / "state.db") as store:
        store.record_contact("h1", '{"cpus": 2}')
        earlier = store.last_contact("h1")
        assert earlier is not None
        store.touch_contacts(["h2", "h1", "h2"])
        store.touch_contacts([])
        h1, h2 = store.last_contact("h1"), store.last_contact("h2")
        assert h1 is not None and h2 is not None
        assert h1[1] == '{"cpus": 2}' and h2[1] == "{}"
        assert h1[0] >= earlier[0] and h1[0] == h2[0]

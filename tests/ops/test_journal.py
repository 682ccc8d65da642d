"""The project lock and the operation log as operations use them, on the test driver.

The state database is real SQLite; its faults are real too (a file that is
not a database, a database whose triggers refuse every write), and neither
may stop an operation or leave it half done: each becomes a warning.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from corral.errors import ConflictError, Outcome, ProjectLocked, SourceErrors
from corral.ops import projects, vms
from corral.ops.journal import project_lock
from corral.state import Claimant, StateStore


def _log(session, project: str) -> list:
    return session.store.operations(project)


def test_every_operation_is_logged_with_outcome_duration_and_error(session, lab_file):
    path = lab_file()
    projects.up(session, path, wait=False)
    projects.stop(session, "lab", ["web"], timeout_s=0.1)
    path.write_text(path.read_text().replace("template base", "template nosuch"))
    with pytest.raises(ConflictError):  # a new template needs --recreate
        projects.upgrade(session, path)
    with pytest.raises(ConflictError):
        vms.vm_set_memory(session, "lab.web", "9G")
    entries = _log(session, "lab")  # newest first
    assert [(e.action, e.outcome) for e in entries] == [
        ("mem-set 9216", "error"), ("upgrade", "error"), ("stop", "ok"), ("up", "ok"),
    ]
    memset, upgrade, stop, up = entries
    assert (up.target, stop.target, memset.target) == (str(path.resolve()), "web", "lab.web")
    assert all(e.user.count("@") == 1 and e.duration_s is not None for e in entries)
    assert "+ host web: create" in up.detail
    assert "need a new disk" in upgrade.detail and "above its maximum" in memset.detail


def test_a_held_lock_is_refused_at_once_without_waiting(session, lab_file):
    path = lab_file()
    with project_lock(session, "lab", "upgrade"):
        with pytest.raises(ProjectLocked) as refused:
            projects.up(session, path, wait=False, wait_lock=False)
        assert projects.plan_source(session, path).actions  # nothing was built
    (logged, *_) = session.store.operations("lab")
    assert (logged.action, logged.outcome) == ("up", "error")
    assert logged.detail == refused.value.message and logged.target == str(path.resolve())
    message = refused.value.message
    assert message.startswith("project 'lab' is locked by ")
    assert "corral upgrade" in message and "since 20" in message and " UTC" in message
    assert refused.value.exit_code == Outcome.CONFLICT.exit_code == 4
    assert refused.value.http_status == 409
    projects.up(session, path, wait=False, wait_lock=False)  # released: goes ahead


def test_a_second_operation_waits_for_the_lock(session, lab_file):
    path = lab_file()
    released = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        with project_lock(session, "lab", "remove"):
            holding.set()
            time.sleep(1.5)
            released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    result = projects.up(session, path, wait=False)
    assert released.is_set(), "up went ahead while the lock was held"
    holder.join()
    assert result.ok
    waits = [n for n in session.reporter.notes if "is locked by" in n]
    assert len(waits) == 1 and "corral remove" in waits[0] and waits[0].endswith("waiting for it")


def test_other_projects_do_not_wait(session, lab_file, tmp_path):
    other = tmp_path / "solo.corral"
    other.write_text(
        "global { project solo }\nswitch s { }\n"
        "host one {\n template base\n qemu\n wait none\n network eth0 { switch s }\n}\n"
    )
    with project_lock(session, "lab", "up"):
        assert projects.up(session, other, wait=False, wait_lock=False).ok


def test_the_lock_of_a_dead_holder_is_taken_over(session, lab_file, tmp_path):
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    store = StateStore(tmp_path / "state.db")
    store.acquire_lock("lab", "up", replace(Claimant.this_process(), pid=child.pid))
    store.close()
    result = projects.up(session, lab_file(), wait=False, wait_lock=False)
    assert result.ok
    assert any("taken over" in w and f"pid {child.pid}" in w for w in result.warnings)
    assert session.store.lock_holder("lab") is None


READ_ONLY = """
CREATE TRIGGER ro_{table}_{verb} BEFORE {verb} ON {table}
BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database'); END;
"""


def _refuse_writes(db: Path) -> None:
    StateStore(db).close()
    with sqlite3.connect(db) as connection:
        for table in ("operations", "locks", "projects"):
            for verb in ("INSERT", "UPDATE", "DELETE"):
                connection.execute(READ_ONLY.format(table=table, verb=verb))


def test_a_database_that_refuses_writes_only_warns(session, lab_file, tmp_path):
    _refuse_writes(tmp_path / "state.db")
    path = lab_file()
    result = projects.up(session, path, wait=False)
    assert result.ok and {a.target for a in result.actions} >= {"web", "app"}
    text = "\n".join(result.warnings)
    assert "without its lock" in text and "operation log not written" in text
    assert "readonly database" in text
    assert projects.plan_source(session, path).empty
    removed = projects.remove(session, "lab")
    assert removed.removed and session.backend("local").observe("lab").domains == ()


def test_a_corrupt_database_file_only_warns(session, lab_file, tmp_path):
    (tmp_path / "state.db").write_bytes(b"this is not a database" * 100)
    path = lab_file()
    result = projects.up(session, path, wait=False)
    assert result.ok
    assert any("state database unavailable" in w for w in result.warnings)
    assert projects.plan_source(session, path).empty


def test_a_project_that_does_not_load_is_logged_as_failed(session, tmp_path):
    bad = tmp_path / "bad.corral"
    bad.write_text("global { project lab }\nhost a { memroy 1G }\n")
    with pytest.raises(SourceErrors):
        projects.up(session, bad, wait=False)
    (entry,) = session.store.operations("")
    assert (entry.action, entry.outcome, entry.target) == ("up", "error", str(bad.resolve()))
    assert "memroy" in entry.detail

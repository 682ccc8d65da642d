"""Project locks as rows of the state database, shared by processes and machines,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from corral.state import Claimant, StateStore, holder_is_dead
from corral.state.lock import process_started


@pytest.fixture
def store(state_url: str):
    with StateStore(state_url) as opened:
        yield opened


def test_one_holder_at_a_time_and_release_by_token(store: StateStore) -> None:
    first, second = Claimant.this_process(), Claimant.this_process()
    assert store.acquire_lock("lab", "up", first) is None
    holder = store.acquire_lock("lab", "upgrade", second)
    assert holder is not None
    assert (holder.token, holder.operation, holder.pid) == (first.token, "up", os.getpid())
    assert holder.holder == first.holder and "@" in holder.holder
    assert (datetime.now(UTC) - holder.since).total_seconds() < 60
    assert "corral up" in holder.describe() and "since" in holder.describe()
    assert store.acquire_lock("other", "up", second) is None  # other projects are free
    assert not store.release_lock("lab", second.token)  # not the holder: nothing released
    assert store.lock_holder("lab") is not None
    assert store.release_lock("lab", first.token)
    assert store.acquire_lock("lab", "upgrade", second) is None


def test_two_stores_on_one_database_share_the_lock(store: StateStore, state_url: str) -> None:
    with StateStore(state_url) as other:
        mine = Claimant.this_process()
        assert store.acquire_lock("lab", "up", mine) is None
        seen = other.acquire_lock("lab", "remove", Claimant.this_process())
        assert seen is not None and seen.token == mine.token


def test_a_dead_holder_on_this_machine_is_dead(store: StateStore) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    ghost = replace(Claimant.this_process(), pid=child.pid, pid_started="1")
    store.acquire_lock("lab", "up", ghost)
    holder = store.lock_holder("lab")
    assert holder is not None and holder_is_dead(holder, ghost.machine)


def test_a_reused_pid_is_not_the_holder(store: StateStore) -> None:
    me = Claimant.this_process()
    assert me.pid_started == process_started(os.getpid()) != ""
    reused = replace(me, pid_started=str(int(me.pid_started) - 1))
    store.acquire_lock("lab", "up", reused)
    holder = store.lock_holder("lab")
    assert holder is not None and holder_is_dead(holder, me.machine)


def test_a_live_holder_and_a_holder_elsewhere_are_never_dead(store: StateStore) -> None:
    me = Claimant.this_process()
    store.acquire_lock("lab", "up", me)
    holder = store.lock_holder("lab")
    assert holder is not None and not holder_is_dead(holder, me.machine)
    far = replace(me, token="far", machine="elsewhere", pid=999_999_999)
    store.acquire_lock("far", "up", far)
    remote = store.lock_holder("far")
    assert remote is not None and not holder_is_dead(remote, me.machine)


def _race_for_the_lock(url: str, start: Any, won: Any) -> None:
    with StateStore(url) as store:
        claimant = Claimant.this_process()
        start.wait()
        if store.acquire_lock("lab", "up", claimant) is None:
            won.put(claimant.pid)


def test_processes_racing_for_a_free_lock_have_one_winner(state_url: str) -> None:
    StateStore(state_url).close()
    context = multiprocessing.get_context("spawn")
    start, won = context.Barrier(3), context.Queue()
    racers = [context.Process(target=_race_for_the_lock, args=(state_url, start, won))
              for _ in range(3)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
        assert racer.exitcode == 0
    winner = won.get(timeout=5)
    assert won.empty()
    with StateStore(state_url) as store:
        holder = store.lock_holder("lab")
    assert holder is not None and holder.pid == winner

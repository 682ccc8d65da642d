"""The jobs tables: records, numbered events, counts, the servers that run them, and
the jobs of servers now gone marked interrupted; on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from corral.state import StateStore
from corral.state.jobs import STATES, Jobs
from corral.state.lock import Claimant


@pytest.fixture
def jobs(state_url: str):
    with StateStore(state_url) as store:
        yield Jobs(store)


def test_a_job_from_queued_to_done_keeps_its_result(jobs: Jobs) -> None:
    added = jobs.add("j1", "alice", "up", "lab", "m1", "i1")
    assert (added.state, added.outcome, added.result, added.finished) == (
        "queued", None, None, False)
    jobs.start("j1")
    assert jobs.get("j1").state == "running" and jobs.get("j1").started_at is not None
    jobs.finish("j1", "done", "partial", {"project": "lab", "failed": [1]}, None)
    done = jobs.get("j1")
    assert (done.state, done.outcome, done.finished) == ("done", "partial", True)
    assert done.result == {"project": "lab", "failed": [1]} and done.error is None
    with pytest.raises(ValueError, match="job state 'over'"):
        jobs.finish("j1", "over", "ok", None, None)
    assert jobs.get("nonesuch") is None


def test_events_are_numbered_per_job_in_order(jobs: Jobs) -> None:
    jobs.add("a", "alice", "up", "lab", "m1", "i1")
    jobs.add("b", "bob", "up", "other", "m1", "i1")
    for n in range(3):
        jobs.add_event("a", "progress", f"step {n}", {"done": n})
    jobs.add_event("b", "note", "hello")
    assert [(e.seq, e.message, e.data) for e in jobs.events("a")] == [
        (1, "step 0", {"done": 0}), (2, "step 1", {"done": 1}), (3, "step 2", {"done": 2})]
    assert [e.seq for e in jobs.events("a", after=2)] == [3]
    assert [(e.seq, e.kind) for e in jobs.events("b")] == [(1, "note")]


def test_counts_name_every_state_and_newest_filters_by_owner(jobs: Jobs) -> None:
    assert jobs.counts() == dict.fromkeys(STATES, 0)
    jobs.add("a", "alice", "up", "lab", "m1", "i1")
    jobs.add("b", "bob", "up", "other", "m1", "i1")
    jobs.start("b")
    assert jobs.counts() == {**dict.fromkeys(STATES, 0), "queued": 1, "running": 1}
    assert [j.id for j in jobs.newest("alice")] == ["a"]
    assert {j.id for j in jobs.newest()} == {"a", "b"}


def test_only_jobs_of_servers_that_are_gone_are_interrupted(jobs: Jobs) -> None:
    """Servers i1 (the caller), i2 (alive, on another machine) and i3 (stale) beat;
    i0 and i9 never did (older servers, on m1 and on m2); i4 is a server of m1
    whose process the caller found gone."""
    for instance, machine in (("i1", "m1"), ("i2", "m2"), ("i3", "m2"), ("i4", "m1")):
        jobs.beat(instance, machine, 1, "")
    for job, machine, instance in (("old", "m1", "i0"), ("queued", "m1", "i0"),
                                   ("mine", "m1", "i1"), ("theirs", "m2", "i9"),
                                   ("live", "m2", "i2"), ("stale", "m2", "i3"),
                                   ("ended", "m1", "i4")):
        jobs.add(job, "alice", "up", "lab", machine, instance)
        if job != "queued":
            jobs.start(job)
    jobs.add("over", "alice", "up", "lab", "m1", "i0")
    jobs.finish("over", "failed", "backend", None, {"error": "x"})
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    for instance, machine in (("i1", "m1"), ("i2", "m2"), ("i4", "m1")):
        jobs.beat(instance, machine, 1, "")
    assert jobs.interrupt_left_over("i1", "m1", between, gone=["i4"]) == 4
    states = {j.id: (j.state, j.outcome) for j in jobs.newest()}
    assert states == {"old": ("interrupted", "interrupted"),
                      "queued": ("interrupted", "interrupted"),
                      "mine": ("running", None), "theirs": ("running", None),
                      "live": ("running", None), "stale": ("interrupted", "interrupted"),
                      "ended": ("interrupted", "interrupted"),
                      "over": ("failed", "backend")}
    assert [s.instance for s in jobs.instances()] == ["i1", "i2"]  # the gone forgotten
    assert [s.instance for s in jobs.instances("m2")] == ["i2"]
    assert jobs.interrupt_left_over("i1", "m1", datetime.now(UTC) + timedelta(hours=1)) == 1
    assert jobs.get("live").state == "interrupted" and jobs.get("mine").state == "running"


def test_the_project_locks_of_a_server_that_is_gone_are_released(
    state_url: str, jobs: Jobs
) -> None:
    with StateStore(state_url) as store:
        for instance, pid, project in (("live", 5, "kept"), ("stale", 4242, "freed")):
            jobs.beat(instance, "m2", pid, "77")
            assert store.acquire_lock(project, "up", Claimant(
                f"token-{instance}", "root@m2", "m2", pid, "77")) is None
        store.acquire_lock("reused", "up", Claimant("token-other", "root@m2", "m2", 4242, "78"))
        time.sleep(0.01)
        between = datetime.now(UTC)
        jobs.beat("live", "m2", 5, "77")
        jobs.interrupt_left_over("caller", "m1", between)
        assert store.lock_holder("freed") is None
        kept, reused = store.lock_holder("kept"), store.lock_holder("reused")
        assert kept is not None and kept.token == "token-live"
        assert reused is not None and reused.token == "token-other"  # another process


def test_a_beat_keeps_the_start_and_moves_the_last_sighting(jobs: Jobs) -> None:
    jobs.beat("i1", "m1", 42, "777")
    (first,) = jobs.instances()
    time.sleep(0.01)
    jobs.beat("i1", "m1", 42, "777")
    (again,) = jobs.instances()
    assert (again.machine, again.pid, again.pid_started) == ("m1", 42, "777")
    assert again.started_at == first.started_at and again.seen_at > first.seen_at

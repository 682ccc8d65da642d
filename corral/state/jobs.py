"""Jobs of the server and their progress events: rows of the state database.

Plain storage with no policy: who may read a job and what a job runs is
decided in :mod:`corral.server.jobs`. A job outlives the request that
started it and the process that ran it, so a client can read its result
later; the server processes that run jobs say they are alive in
``server_instances``, so servers sharing the database can tell which
unfinished jobs nobody will finish.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, exists, func, select, update
from sqlalchemy.orm import Session

from corral.state.db import JobEventRow, JobRow, LockRow, ServerInstanceRow
from corral.state.store import StateStore, aware, now

STATES = ("queued", "running", "done", "failed", "interrupted")
UNFINISHED = ("queued", "running")


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as stored; ``result``/``error`` are the JSON the operation ended with."""

    id: str
    owner: str
    operation: str
    target: str
    state: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None

    @property
    def finished(self) -> bool:
        return self.state not in UNFINISHED


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One progress event; ``seq`` counts from 1 within its job."""

    seq: int
    at: datetime
    kind: str
    message: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ServerInstance:
    """A server process that runs jobs; ``seen_at`` is its last heartbeat (UTC)."""

    instance: str
    machine: str
    pid: int
    pid_started: str
    started_at: datetime
    seen_at: datetime


class Jobs:
    """The ``jobs`` and ``job_events`` tables of the state database ``store``."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def add(self, job_id: str, owner: str, operation: str, target: str, machine: str,
            instance: str) -> JobRecord:
        row = JobRow(id=job_id, owner=owner, operation=operation, target=target,
                     state="queued", machine=machine, instance=instance, created_at=now())
        with self._store.guard(), Session(self._store.engine) as session, session.begin():
            session.add(row)
        found = self.get(job_id)
        assert found is not None  # just written in its own transaction
        return found

    def get(self, job_id: str) -> JobRecord | None:
        with self._store.guard(), Session(self._store.engine) as session:
            row = session.get(JobRow, job_id)
            return _job(row) if row is not None else None

    def newest(self, owner: str | None = None, limit: int = 100) -> list[JobRecord]:
        """The newest ``limit`` jobs, newest first, of ``owner`` (None: everyone's)."""
        query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id).limit(limit)
        if owner is not None:
            query = query.where(JobRow.owner == owner)
        with self._store.guard(), Session(self._store.engine) as session:
            return [_job(row) for row in session.scalars(query)]

    def counts(self) -> dict[str, int]:
        """How many jobs are in each state (every state named, zero included)."""
        query = select(JobRow.state, func.count()).group_by(JobRow.state)
        with self._store.guard(), Session(self._store.engine) as session:
            found = {state: int(count) for state, count in session.execute(query)}
        return {state: found.get(state, 0) for state in STATES}

    def start(self, job_id: str) -> None:
        self._update(job_id, state="running", started_at=now())

    def finish(self, job_id: str, state: str, outcome: str, result: dict[str, Any] | None,
               error: dict[str, Any] | None) -> None:
        if state not in STATES:
            raise ValueError(f"job state '{state}' is not one of {', '.join(STATES)}")
        self._update(
            job_id, state=state, outcome=outcome, finished_at=now(),
            result_json=json.dumps(result) if result is not None else None,
            error_json=json.dumps(error) if error is not None else None,
        )

    def beat(self, instance: str, machine: str, pid: int, pid_started: str) -> None:
        """Server process ``instance`` (``pid`` on ``machine``) is alive now: its row
        in ``server_instances``, written the first time and refreshed after."""
        moment = now()
        statement = self._store.insert(ServerInstanceRow).values(
            instance=instance, machine=machine, pid=pid, pid_started=pid_started,
            started_at=moment, seen_at=moment,
        ).on_conflict_do_update(index_elements=[ServerInstanceRow.instance],
                                set_={"seen_at": moment})
        with self._store.guard(), Session(self._store.engine) as session, session.begin():
            session.execute(statement)

    def instances(self, machine: str | None = None) -> list[ServerInstance]:
        """The recorded server processes (of ``machine``; None: of every machine)."""
        query = select(ServerInstanceRow).order_by(ServerInstanceRow.started_at)
        if machine is not None:
            query = query.where(ServerInstanceRow.machine == machine)
        with self._store.guard(), Session(self._store.engine) as session:
            return [_instance(row) for row in session.scalars(query)]

    def interrupt_left_over(self, instance: str, machine: str, stale_before: datetime,
                            gone: Collection[str] = ()) -> int:
        """Mark interrupted the unfinished jobs no server will finish; how many there were.

        Those are the jobs of server processes last seen before ``stale_before``
        or named in ``gone`` (processes of this machine known to have ended), and
        those of processes on ``machine`` that never recorded themselves (servers
        older than ``server_instances``). Jobs of ``instance`` (the caller) and of
        other live servers are left alone. The project locks those ended
        processes held are released (on another machine nothing else could tell
        they are dead), and ended processes with no unfinished job left are
        forgotten.
        """
        cutoff = stale_before.astimezone(UTC).replace(tzinfo=None)
        ended = (ServerInstanceRow.instance != instance) & (
            (ServerInstanceRow.seen_at < cutoff) | ServerInstanceRow.instance.in_(list(gone)))
        unfinished = JobRow.state.in_(UNFINISHED)
        orphaned = update(JobRow).where(
            unfinished, JobRow.instance != instance,
            JobRow.instance.in_(select(ServerInstanceRow.instance).where(ended))
            | ((JobRow.machine == machine)
               & JobRow.instance.not_in(select(ServerInstanceRow.instance))),
        ).values(state="interrupted", finished_at=now(), outcome="interrupted")
        released = delete(LockRow).where(exists().where(
            ended, ServerInstanceRow.machine == LockRow.machine,
            ServerInstanceRow.pid == LockRow.pid,
            ServerInstanceRow.pid_started == LockRow.pid_started))
        forgotten = delete(ServerInstanceRow).where(ended, ~exists().where(
            unfinished, JobRow.instance == ServerInstanceRow.instance))
        with self._store.guard(), Session(self._store.engine) as session, session.begin():
            count = int(cast(CursorResult[Any], session.execute(orphaned)).rowcount)
            session.execute(released)
            session.execute(forgotten)
            return count

    def add_event(self, job_id: str, kind: str, message: str,
                  data: dict[str, Any] | None = None) -> JobEvent:
        """Append an event; its ``seq`` is one more than the job's last."""
        with self._store.guard(), Session(self._store.engine) as session, session.begin():
            last = session.scalar(
                select(func.max(JobEventRow.seq)).where(JobEventRow.job == job_id))
            row = JobEventRow(job=job_id, seq=(last or 0) + 1, at=now(), kind=kind,
                              message=message, data_json=json.dumps(data or {}))
            session.add(row)
            session.flush()
            return _event(row)

    def events(self, job_id: str, after: int = 0) -> list[JobEvent]:
        """The job's events with ``seq`` above ``after``, in order."""
        query = select(JobEventRow).where(
            JobEventRow.job == job_id, JobEventRow.seq > after
        ).order_by(JobEventRow.seq)
        with self._store.guard(), Session(self._store.engine) as session:
            return [_event(row) for row in session.scalars(query)]

    def _update(self, job_id: str, **values: Any) -> None:
        with self._store.guard(), Session(self._store.engine) as session, session.begin():
            session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))


def _job(row: JobRow) -> JobRecord:
    return JobRecord(
        id=row.id, owner=row.owner, operation=row.operation, target=row.target,
        state=row.state, created_at=aware(row.created_at),
        started_at=aware(row.started_at) if row.started_at else None,
        finished_at=aware(row.finished_at) if row.finished_at else None,
        outcome=row.outcome,
        result=json.loads(row.result_json) if row.result_json else None,
        error=json.loads(row.error_json) if row.error_json else None,
    )


def _instance(row: ServerInstanceRow) -> ServerInstance:
    return ServerInstance(instance=row.instance, machine=row.machine, pid=row.pid,
                          pid_started=row.pid_started, started_at=aware(row.started_at),
                          seen_at=aware(row.seen_at))


def _event(row: JobEventRow) -> JobEvent:
    return JobEvent(seq=row.seq, at=aware(row.at), kind=row.kind, message=row.message,
                    data=json.loads(row.data_json or "{}"))

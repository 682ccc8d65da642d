"""Jobs of the server and their progress events: rows of the state database.

Plain storage with no policy: who may read a job and what a job runs is
decided in :mod:`corral.server.jobs`. A job outlives the request that
started it and the process that ran it, so a client can read its result
later, and a server that restarts can tell which jobs it left unfinished.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from corral.state.db import JobEventRow, JobRow
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

    def interrupt_left_over(self, machine: str, instance: str) -> int:
        """Mark the unfinished jobs of earlier server processes on ``machine`` (any
        instance but ``instance``) interrupted; how many there were."""
        statement = update(JobRow).where(
            JobRow.machine == machine, JobRow.instance != instance,
            JobRow.state.in_(UNFINISHED),
        ).values(state="interrupted", finished_at=now(), outcome="interrupted")
        with self._store.guard(), Session(self._store.engine) as session, session.begin():
            return int(cast(CursorResult[Any], session.execute(statement)).rowcount)

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


def _event(row: JobEventRow) -> JobEvent:
    return JobEvent(seq=row.seq, at=aware(row.at), kind=row.kind, message=row.message,
                    data=json.loads(row.data_json or "{}"))

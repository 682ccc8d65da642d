"""Long operations as jobs: accepted at once (202), run in the background, read later.

A job is a row of the state database (:mod:`corral.state.jobs`) with the
progress events its operation reported through :class:`RecordingReporter`,
and, once it ends, the operation's typed result as JSON or its error. Jobs
run on a bounded pool of threads of the server process, each with an
operations session of its own for the identity that asked. A server that
stops leaves its unfinished jobs ``running`` in the database; the next one
on the same machine marks them ``interrupted`` when it starts (the
operations are idempotent: submitting the same one again converges).
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol

from corral.errors import CorralError, NotFoundError, Outcome
from corral.ops.audit import audited
from corral.ops.identity import Identity
from corral.ops.reporting import Progress, Reporter
from corral.ops.session import Session
from corral.server.errors import error_body
from corral.state.jobs import JobEvent, JobRecord, Jobs
from corral.state.store import StateStore

log = logging.getLogger("corral.server.jobs")
DEFAULT_WORKERS = 4


class Result(Protocol):
    """What an operation returns: a typed result with its JSON."""

    def as_json(self) -> Any: ...


Work = Callable[[Session], Result]
SessionFactory = Callable[[Identity, Reporter], Session]


class RecordingReporter:
    """A :class:`~corral.ops.reporting.Reporter` that stores every note, warning and
    step of progress as an event of the job. Events are numbered in order (a lock
    serialises the parallel workers of one operation); a database that cannot be
    written loses the event, never the operation."""

    def __init__(self, jobs: Jobs, job_id: str) -> None:
        self._jobs = jobs
        self._job = job_id
        self._lock = threading.Lock()

    def add(self, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        with self._lock:
            try:
                self._jobs.add_event(self._job, kind, message, data)
            except CorralError as error:
                log.warning("job %s: event not recorded: %s", self._job, error.message)

    def note(self, message: str) -> None:
        self.add("note", message)

    def warn(self, message: str) -> None:
        self.add("warning", message)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Progress]:
        self.add("progress", description, {"description": description, "done": 0,
                                           "total": total})
        yield _Steps(self, description, total)


class _Steps:
    def __init__(self, reporter: RecordingReporter, description: str, total: int) -> None:
        self._reporter = reporter
        self._description = description
        self._total = total
        self._done = 0
        self._lock = threading.Lock()

    def advance(self, label: str = "") -> None:
        with self._lock:
            self._done += 1
            done = self._done
        self._reporter.add("progress", label or self._description, {
            "description": self._description, "done": done, "total": self._total})


def outcome_of(result: Result) -> Outcome:
    """How a finished operation ended: partly done, a guest not ready, or ok."""
    if getattr(result, "partial", False):
        return Outcome.PARTIAL
    if getattr(result, "ok", True) is False:
        return Outcome.NOT_READY
    return Outcome.OK


class JobRunner:
    """Runs jobs on ``workers`` threads and records them in the state database."""

    def __init__(self, store: StateStore, sessions: SessionFactory,
                 workers: int = DEFAULT_WORKERS) -> None:
        self.jobs = Jobs(store)
        self._sessions = sessions
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="corral-job")
        self.machine = socket.gethostname()
        self.instance = uuid.uuid4().hex

    def interrupt_left_over(self) -> int:
        """Mark the jobs earlier processes on this machine left unfinished interrupted."""
        return self.jobs.interrupt_left_over(self.machine, self.instance)

    def submit(self, identity: Identity, operation: str, target: str, work: Work) -> JobRecord:
        """Record a queued job and start it; its record, at once."""
        job = self.jobs.add(uuid.uuid4().hex, identity.name, operation, target,
                            self.machine, self.instance)
        self._pool.submit(self._run, job.id, identity, operation, target, work)
        return job

    def _run(self, job_id: str, identity: Identity, operation: str, target: str,
             work: Work) -> None:
        reporter = RecordingReporter(self.jobs, job_id)
        try:
            self.jobs.start(job_id)
            with self._sessions(identity, reporter) as session:
                try:
                    with audited(session, identity, operation, target) as note:
                        result = work(session)
                        outcome = outcome_of(result)
                        note.detail = f"job {job_id}: {outcome.name.lower()}"
                except CorralError as error:
                    self.jobs.finish(job_id, "failed", error.outcome.name.lower(), None,
                                     error_body(error))
                    return
            self.jobs.finish(job_id, "done", outcome.name.lower(), result.as_json(), None)
        except Exception as error:  # a bug: the job says so instead of staying "running"
            log.exception("job %s failed", job_id)
            try:
                self.jobs.finish(job_id, "failed", Outcome.INTERNAL.name.lower(), None, {
                    "error": f"internal error: {type(error).__name__}: {error}",
                    "kind": "internal", "exit_code": Outcome.INTERNAL.exit_code, "hint": None})
            except CorralError:
                log.exception("job %s: its end not recorded", job_id)

    def shutdown(self) -> None:
        """Stop taking jobs; running ones finish on their own threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def readable(self, identity: Identity, job_id: str) -> JobRecord:
        """Job ``job_id`` when ``identity`` may read it (its owner, an administrator);
        any other job is "not found", exactly like one that does not exist."""
        found = self.jobs.get(job_id) if len(job_id) <= 64 else None
        if found is None or not (identity.admin or found.owner == identity.name):
            raise NotFoundError(f"job '{job_id[:64]}' not found")
        return found


def job_json(job: JobRecord, events: list[JobEvent] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job.id, "operation": job.operation, "target": job.target, "owner": job.owner,
        "state": job.state, "outcome": job.outcome,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "result": job.result, "error": job.error,
    }
    if events is not None:
        body["events"] = [event_json(e) for e in events]
    return body


def event_json(event: JobEvent) -> dict[str, Any]:
    return {"seq": event.seq, "at": event.at.isoformat(), "kind": event.kind,
            "message": event.message, "data": event.data}

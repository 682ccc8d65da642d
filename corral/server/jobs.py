"""Long operations as jobs: accepted at once (202), run in the background, read later.

A job is a row of the state database (:mod:`corral.state.jobs`) with the
progress events its operation reported through :class:`RecordingReporter`,
and, once it ends, the operation's typed result as JSON or its error. Jobs
run on a bounded pool of threads of the server process, each with an
operations session of its own for the identity that asked. A server that
stops leaves its unfinished jobs ``running`` in the database. Several
servers may share that database, so a job is marked ``interrupted`` only
once its own server is known to be gone: its process ended (a restart on the
same machine sees that at once) or its heartbeat stopped (see
:class:`Liveness`). The operations are idempotent: submitting the same one
again converges.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from corral.errors import CorralError, NotFoundError, Outcome
from corral.ops.audit import audited
from corral.ops.identity import Identity
from corral.ops.reporting import Progress, Reporter
from corral.ops.session import Session
from corral.server.errors import error_body
from corral.state.jobs import JobEvent, JobRecord, Jobs
from corral.state.lock import process_is_gone, process_started
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


@dataclass(frozen=True, slots=True)
class Liveness:
    """How a server shows other servers on its database that it is alive: its row
    in ``server_instances`` is refreshed every ``beat_s`` seconds, and a server
    not seen for ``stale_after_s`` is taken for gone, its unfinished jobs with it.
    The servers' clocks must agree to well within ``stale_after_s`` (NTP does)."""

    beat_s: float = 10.0
    stale_after_s: float = 60.0


class JobRunner:
    """Runs jobs on ``workers`` threads and records them in the state database.

    :meth:`start` records this server process as alive and keeps it so with
    a heartbeat thread; that thread also marks interrupted the jobs of servers
    that stopped beating (see :meth:`interrupt_left_over`).
    """

    def __init__(self, store: StateStore, sessions: SessionFactory,
                 workers: int = DEFAULT_WORKERS, liveness: Liveness | None = None) -> None:
        self.jobs = Jobs(store)
        self._sessions = sessions
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="corral-job")
        self.machine = socket.gethostname()
        self.instance = uuid.uuid4().hex
        self._pid = os.getpid()
        self._pid_started = process_started(self._pid)
        self._liveness = liveness or Liveness()
        self._stopping = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def start(self) -> int:
        """Record this server as alive, mark the jobs no server will finish
        interrupted (how many: the return value), then keep beating."""
        self.beat()
        interrupted = self.interrupt_left_over()
        self._heartbeat = threading.Thread(target=self._beat_until_stopped,
                                           name="corral-heartbeat", daemon=True)
        self._heartbeat.start()
        return interrupted

    def beat(self) -> None:
        """This server is alive now (its row of ``server_instances``)."""
        self.jobs.beat(self.instance, self.machine, self._pid, self._pid_started)

    def interrupt_left_over(self) -> int:
        """Mark interrupted the unfinished jobs no server will finish: those of
        servers not seen for ``stale_after_s``, of ended server processes of this
        machine (known at once from their pids: a restart), and of this machine's
        servers that predate ``server_instances``; the project locks of the gone
        servers are released. Another live server's jobs and locks stay."""
        gone = [server.instance for server in self.jobs.instances(self.machine)
                if server.instance != self.instance
                and process_is_gone(server.pid, server.pid_started)]
        stale_before = datetime.now(UTC) - timedelta(seconds=self._liveness.stale_after_s)
        return self.jobs.interrupt_left_over(self.instance, self.machine, stale_before, gone)

    def _beat_until_stopped(self) -> None:
        while not self._stopping.wait(self._liveness.beat_s):
            try:
                self.beat()
                interrupted = self.interrupt_left_over()
            except CorralError as error:  # the database is away: try again next beat
                log.warning("heartbeat not recorded: %s", error.message)
                continue
            if interrupted:
                log.warning("%d job(s) of a server that stopped marked interrupted",
                            interrupted)

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
        """Stop taking jobs and beating; running ones finish on their own threads
        (a server that then dies is known gone once its beat is stale)."""
        self._stopping.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=10)
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

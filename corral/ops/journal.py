"""The operation log and the project lock, as operations use them.

Both live in the state database, which is a convenience: when it cannot be
written, the operation goes on and the fault becomes a warning. Every
database write happens before the first libvirt change or after the last
one, never between two of them, so a database fault can never leave a
change half applied.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from corral.errors import CorralError, ProjectLocked
from corral.ops.session import Session
from corral.state import Claimant, ProjectRecord, StateStore, holder_is_dead

LOCK_POLL_S = 0.5
T = TypeVar("T")


@dataclass(slots=True)
class Entry:
    """The body of :func:`recorded` may add a detail line (what was done)."""

    detail: str = ""


@contextmanager
def recorded(session: Session, project: str, action: str, target: str) -> Iterator[Entry]:
    """Log ``action`` on ``target`` as started, run the body, log how it ended.

    The entry says who (``user@machine``, after the name of a user of the
    server), the outcome (``ok`` or ``error`` with the error text), and the
    duration. The body's exception propagates unchanged; a failed log write
    is only a warning.
    """
    user = _who(session)
    entry = Entry()
    began = time.monotonic()
    row = _write(session, lambda s: s.log_operation(
        project, action, target, "started", user=user
    ))
    try:
        yield entry
    except BaseException as exc:
        text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        _close(session, row, project, action, target, user, "error",
               f"{entry.detail}: {text}" if entry.detail else text, time.monotonic() - began)
        raise
    _close(session, row, project, action, target, user, "ok", entry.detail,
           time.monotonic() - began)


def _who(session: Session) -> str:
    """``user@machine`` of this process; for a user of the server, their name first."""
    holder = Claimant.this_process().holder
    identity = session.identity
    return holder if identity.local else f"{identity.name} via {holder}"


def record_failure(
    session: Session, project: str, action: str, target: str, error: BaseException
) -> None:
    """Log an operation that failed before it began (its file did not load, its
    project was locked): it is in the log like any other, with the error text."""
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    user = _who(session)
    _write(session, lambda s: s.log_operation(
        project, action, target, "error", text, user=user, duration_s=0.0
    ))


def _close(
    session: Session, row: int | None, project: str, action: str, target: str, user: str,
    outcome: str, detail: str, duration_s: float,
) -> None:
    if row is not None:
        _write(session, lambda s: s.finish_operation(row, outcome, detail, duration_s))
    else:  # the first write failed; the database may answer again by now
        _write(session, lambda s: s.log_operation(
            project, action, target, outcome, detail, user=user, duration_s=duration_s
        ))


def _write(session: Session, write: Callable[[StateStore], T]) -> T | None:
    """Run one database write; a fault becomes a warning and None."""
    store = session.store
    if store is None:
        return None
    try:
        return write(store)
    except CorralError as error:
        session.warn(f"operation log not written: {error.message}")
        return None


@contextmanager
def project_lock(
    session: Session, project: str, operation: str, *, wait: bool = True,
    poll_s: float = LOCK_POLL_S, target: str = "",
) -> Iterator[None]:
    """Hold project ``project``'s lock for the body: one changing operation at a time.

    A lock held by another live process is waited for (announced once per
    holder through the reporter) or, with ``wait=False``, refused at once with
    :class:`ProjectLocked` naming the holder and since when. A lock whose
    holder died on this machine is taken over with a warning. Without a usable
    database the body runs unlocked, with a warning. A refusal is logged as a
    failed ``operation`` on ``target``.
    """
    store = session.store
    claimant = Claimant.this_process()
    try:
        held = store is not None and _acquire(session, store, project, operation, claimant,
                                              wait=wait, poll_s=poll_s)
    except ProjectLocked as refused:
        record_failure(session, project, operation, target or project, refused)
        raise
    if store is None:
        session.warn(f"no state database: project {project} is changed without its lock")
    try:
        yield
    finally:
        if held and store is not None:
            try:
                store.release_lock(project, claimant.token)
            except CorralError as error:
                session.warn(f"lock of project {project} not released: {error.message}; "
                             "an operation on this machine takes it over once this "
                             "process has ended")


def _acquire(
    session: Session, store: StateStore, project: str, operation: str, claimant: Claimant,
    *, wait: bool, poll_s: float,
) -> bool:
    """True once the lock is ours; False when the database cannot hold locks."""
    announced: str | None = None
    while True:
        try:
            holder = store.acquire_lock(project, operation, claimant)
            if holder is None:
                return True
            if holder_is_dead(holder, claimant.machine):
                session.warn(f"lock of project {project} taken over from {holder.describe()}: "
                             "that process is gone")
                store.release_lock(project, holder.token)
                continue
        except CorralError as error:
            session.warn(f"project {project} is changed without its lock: {error.message}")
            return False
        message = f"project '{project}' is locked by {holder.describe()}"
        if not wait:
            raise ProjectLocked(message, hint="wait for it, or leave out --no-wait-lock to queue")
        if announced != holder.token:
            session.reporter.note(f"{message}; waiting for it")
            announced = holder.token
        time.sleep(poll_s)


def recorded_project(session: Session, project: str) -> ProjectRecord | None:
    """What the last ``up``/``build``/``upgrade`` recorded of ``project`` (its file
    and model), or None when unknown; a database fault is only a warning."""
    store = session.store
    if store is None:
        return None
    try:
        return store.get_project(project)
    except CorralError as error:
        session.warn(f"recorded project {project} not read: {error}")
        return None

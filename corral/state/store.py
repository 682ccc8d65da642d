"""The state store: recorded projects and the operation log, in SQLite or a database server.

For projects the database is a convenience, not the truth. Libvirt is the
source of truth for what exists: every domain, network and volume Corral
creates carries its own metadata (project, host, model hash), so ``status``,
``plan`` and ``remove`` work from libvirt alone. Losing the database loses
the history of projects — the last recorded project files and the operation
log — and a missing file is simply created again, empty, on next use; no
operation on VMs may ever depend on a row being here. The users, tokens,
ownership and audit rows kept beside them (:mod:`corral.state.accounts`,
:mod:`corral.state.audit`) are the server's own truth: they are backed up
like any other database.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session

from corral.errors import BackendError, ConfigError
from corral.state.db import (
    BUSY_TIMEOUT_S,
    ContactRow,
    LockRow,
    OperationRow,
    OwnerRow,
    ProjectRow,
    ProjectTextRow,
    ShareRow,
    create_schema,
    database_url,
    open_engine,
)
from corral.state.memo import ChangeCounter, ReadMemo

if TYPE_CHECKING:
    from corral.state.lock import Claimant, LockHolder

DEFAULT_PATH = Path("/var/lib/corral/state.db")
HINT = ("the database keeps the history of projects and the server's users, tokens and "
        "audit log; restore it from a backup, or move it aside to start afresh")


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    """The last recorded version of a project: its file, resolved model and hash."""

    name: str
    source_path: str
    model_json: str
    model_hash: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """One entry of the operation log.

    ``outcome`` is ``started`` while an operation runs (and stays so if the
    process died), then ``ok`` or ``error``; ``duration_s`` is set at the end.
    """

    id: int
    started_at: datetime
    project: str
    action: str
    target: str
    outcome: str
    detail: str
    user: str
    duration_s: float | None


@dataclass(slots=True)
class OperationNote:
    """Handed to the body of :meth:`StateStore.operation` to add a detail line."""

    detail: str = ""


def current_user() -> str:
    """The OS user running Corral, for the operation log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


class StateStore:
    """Projects and operations in the SQLite file at ``location`` (a path), or in
    the database a SQLAlchemy URL (a string) names.

    A SQLite file and its directory are created on first use. Several processes
    may share one file: it runs in WAL mode with a busy timeout, and every
    write is a single statement in its own short transaction. Missing tables
    are created on every opening, so an older database gains new ones and
    keeps its rows.
    """

    def __init__(self, location: Path | str = DEFAULT_PATH) -> None:
        url = _url(location)
        database = url.database if url.get_backend_name() == "sqlite" else None
        self.path: Path | None = Path(database) if database and database != ":memory:" else None
        # How messages name the database: its file, or its URL without the password.
        self.name = str(self.path) if self.path else url.render_as_string(hide_password=True)
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"state database directory {self.path.parent} is not usable: "
                    f"{exc.strerror}",
                    hint="check 'state' under [paths] in corral.toml",
                ) from exc
        try:
            self._engine = open_engine(url)
        except (NoSuchModuleError, ImportError) as exc:
            raise ConfigError(
                f"state database {self.name}: its driver is not installed ({exc})",
                hint="install the driver package the URL names, or check [state] url",
            ) from None
        with self.guard():
            create_schema(self._engine)
        # Answers asked on every server request, kept until the database changes.
        self.memo = ReadMemo(ChangeCounter(self.path, BUSY_TIMEOUT_S)
                             if self.path is not None else None)

    @property
    def engine(self) -> Engine:
        """The engine, for the stores of users and audit that share this database."""
        return self._engine

    def insert(self, table: type[DeclarativeBase]) -> sqlite.Insert | postgresql.Insert:
        """An INSERT with ``on_conflict_do_*`` in this database's dialect."""
        if self._engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def close(self) -> None:
        """Release the database connections."""
        self.memo.close()
        self._engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- projects ---------------------------------------------------------------

    def record_project(
        self, name: str, source_path: str | Path, model_json: str, model_hash: str
    ) -> ProjectRecord:
        """Insert or replace the recorded version of project ``name``."""
        moment = now()
        values = {
            "name": name,
            "source_path": str(source_path),
            "model_json": model_json,
            "model_hash": model_hash,
            "created_at": moment,
            "updated_at": moment,
        }
        statement = (
            self.insert(ProjectRow)
            .values(**values)
            .on_conflict_do_update(
                index_elements=[ProjectRow.name],
                set_={k: v for k, v in values.items() if k not in ("name", "created_at")},
            )
        )
        with self.guard(), Session(self._engine) as session, session.begin():
            session.execute(statement)
        record = self.get_project(name)
        if record is None:  # only if another process forgot it in between
            raise BackendError(f"project {name} vanished from {self.name} while recording it")
        return record

    def get_project(self, name: str) -> ProjectRecord | None:
        """The recorded project ``name``, or None if it was never recorded."""
        with self.guard(), Session(self._engine) as session:
            row = session.get(ProjectRow, name)
            return _project(row) if row is not None else None

    def list_projects(self) -> list[ProjectRecord]:
        """Every recorded project, sorted by name."""
        with self.guard(), Session(self._engine) as session:
            rows = session.scalars(select(ProjectRow).order_by(ProjectRow.name))
            return [_project(row) for row in rows]

    def forget_project(self, name: str) -> bool:
        """Drop project ``name``'s record, owner, shares and text (its log stays), so the
        name is free for anyone; True if there was a record."""
        with self.guard(), Session(self._engine) as session, session.begin():
            result = session.execute(delete(ProjectRow).where(ProjectRow.name == name))
            session.execute(delete(OwnerRow).where(OwnerRow.project == name))
            session.execute(delete(ShareRow).where(ShareRow.project == name))
            session.execute(delete(ProjectTextRow).where(ProjectTextRow.project == name))
            return bool(cast(CursorResult[Any], result).rowcount)

    # -- operation log ----------------------------------------------------------

    def log_operation(
        self,
        project: str,
        action: str,
        target: str,
        outcome: str,
        detail: str = "",
        user: str | None = None,
        duration_s: float | None = None,
    ) -> int:
        """Append one finished (or started) operation to the log; return its id."""
        row = OperationRow(
            started_at=now(),
            project=project,
            action=action,
            target=target,
            outcome=outcome,
            detail=detail,
            user=user or current_user(),
            duration_s=duration_s,
        )
        with self.guard(), Session(self._engine) as session, session.begin():
            session.add(row)
            session.flush()
            return row.id

    def operations(self, project: str | None = None, limit: int = 100) -> list[OperationRecord]:
        """The newest ``limit`` log entries, newest first, optionally of one project."""
        query = select(OperationRow).order_by(OperationRow.id.desc()).limit(limit)
        if project is not None:
            query = query.where(OperationRow.project == project)
        with self.guard(), Session(self._engine) as session:
            return [_operation(row) for row in session.scalars(query)]

    @contextmanager
    def operation(
        self, project: str, action: str, target: str, user: str | None = None
    ) -> Iterator[OperationNote]:
        """Log an operation as ``started``, run the body, then record how it ended.

        The entry ends ``ok`` or ``error`` (with the error text as detail) and
        its duration. The body's exception always propagates unchanged; if the
        closing log write fails as well, the body's error is the one raised.
        """
        entry = self.log_operation(project, action, target, "started", user=user)
        note = OperationNote()
        began = time.monotonic()
        try:
            yield note
        except BaseException as exc:
            # The body's own error matters more than a failed log write.
            with suppress(BackendError):
                self._finish(entry, "error", _describe(exc, note), time.monotonic() - began)
            raise
        self._finish(entry, "ok", note.detail, time.monotonic() - began)

    def finish_operation(self, entry: int, outcome: str, detail: str, duration_s: float) -> None:
        """Close a ``started`` log entry with how it ended and how long it took."""
        self._finish(entry, outcome, detail, duration_s)

    # -- project locks ----------------------------------------------------------

    def acquire_lock(self, project: str, operation: str, claimant: Claimant) -> LockHolder | None:
        """Take project ``project``'s lock for ``claimant``: None when taken, else the holder.

        One INSERT that does nothing when a row exists: two processes racing
        for a free lock cannot both win, on one machine or on several.
        """
        statement = (
            self.insert(LockRow)
            .values(
                project=project, token=claimant.token, holder=claimant.holder,
                machine=claimant.machine, pid=claimant.pid, pid_started=claimant.pid_started,
                operation=operation, since=now(),
            )
            .on_conflict_do_nothing(index_elements=[LockRow.project])
            .returning(LockRow.project)  # a row back: ours (an ORM insert's rowcount is -1)
        )
        with self.guard(), Session(self._engine) as session, session.begin():
            if session.execute(statement).first() is not None:
                return None
            row = session.get(LockRow, project)
            if row is None:  # released between the two statements: try again
                return self.acquire_lock(project, operation, claimant)
            return _holder(row)

    def lock_holder(self, project: str) -> LockHolder | None:
        """Who holds project ``project``'s lock, or None."""
        with self.guard(), Session(self._engine) as session:
            row = session.get(LockRow, project)
            return _holder(row) if row is not None else None

    def release_lock(self, project: str, token: str) -> bool:
        """Drop the lock if ``token`` still holds it (also to break a dead holder's)."""
        statement = delete(LockRow).where(LockRow.project == project, LockRow.token == token)
        with self.guard(), Session(self._engine) as session, session.begin():
            return bool(cast(CursorResult[Any], session.execute(statement)).rowcount)

    # -- service hosts ----------------------------------------------------------

    def record_contact(self, name: str, facts_json: str) -> None:
        """Service host ``name`` answered now, with these facts."""
        values = {"name": name, "at": now(), "facts_json": facts_json}
        statement = self.insert(ContactRow).values(**values).on_conflict_do_update(
            index_elements=[ContactRow.name], set_={"at": values["at"], "facts_json": facts_json}
        )
        with self.guard(), Session(self._engine) as session, session.begin():
            session.execute(statement)

    def touch_contacts(self, names: Iterable[str]) -> None:
        """Service hosts ``names`` answered now (their recorded facts stay as they
        are): one statement, as ``status`` of many service hosts writes them all."""
        moment = now()
        rows = [{"name": name, "at": moment, "facts_json": "{}"} for name in sorted(set(names))]
        if not rows:
            return
        insert = self.insert(ContactRow).values(rows)
        statement = insert.on_conflict_do_update(index_elements=[ContactRow.name],
                                                 set_={"at": insert.excluded.at})
        with self.guard(), self._engine.begin() as connection:
            connection.execute(statement)

    def last_contact(self, name: str) -> tuple[datetime, str] | None:
        """When service host ``name`` last answered (UTC) and the facts it gave, if ever."""
        with self.guard(), Session(self._engine) as session:
            row = session.get(ContactRow, name)
            return (aware(row.at), row.facts_json) if row is not None else None

    def _finish(self, entry: int, outcome: str, detail: str, duration_s: float) -> None:
        statement = (
            update(OperationRow)
            .where(OperationRow.id == entry)
            .values(outcome=outcome, detail=detail, duration_s=duration_s)
        )
        with self.guard(), Session(self._engine) as session, session.begin():
            session.execute(statement)

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn database failures into one BackendError naming the database."""
        try:
            yield
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise BackendError(f"state database {self.name}: {reason}", hint=HINT) from exc



def _url(location: Path | str) -> URL:
    if isinstance(location, Path):
        return URL.create("sqlite", database=str(location))
    try:
        return database_url(location)
    except ValueError as error:
        raise ConfigError(f"state database: {error}", hint="check [state] url") from None


def now() -> datetime:
    """Current UTC time, naive, as the database stores it."""
    return datetime.now(UTC).replace(tzinfo=None)


def aware(moment: datetime) -> datetime:
    """A time read from the database, as UTC."""
    return moment.replace(tzinfo=UTC)


def _describe(exc: BaseException, note: OperationNote) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{note.detail}: {text}" if note.detail else text


def _holder(row: LockRow) -> LockHolder:
    from corral.state.lock import LockHolder

    return LockHolder(
        project=row.project, token=row.token, holder=row.holder, machine=row.machine,
        pid=row.pid, pid_started=row.pid_started, operation=row.operation,
        since=aware(row.since),
    )


def _project(row: ProjectRow) -> ProjectRecord:
    return ProjectRecord(
        name=row.name,
        source_path=row.source_path,
        model_json=row.model_json,
        model_hash=row.model_hash,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


def _operation(row: OperationRow) -> OperationRecord:
    return OperationRecord(
        id=row.id,
        started_at=aware(row.started_at),
        project=row.project,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        detail=row.detail,
        user=row.user,
        duration_s=row.duration_s,
    )

"""Schema and engine setup for the state database.

The tables: ``projects`` (the last applied version of each project file),
``operations`` (who did what to which project, when, and how it ended),
``locks`` (which process is changing which project right now),
``host_contacts`` (when each service host last answered, and what it said),
and those of users and access: ``users``, ``api_tokens``, ``project_owners``,
``project_shares`` and ``audit_log`` (docs/users-and-access.md), the
server's long operations, ``jobs`` and ``job_events``, with the server
processes that run them, ``server_instances`` (docs/server.md), and the web
portal's ``portal_sessions``, ``login_failures`` and ``project_texts``
(docs/portal.md).

The database is SQLite by default and any SQLAlchemy URL of a supported
dialect otherwise (``[state] url``). A SQLite file is set up for several
processes at once — a CLI run beside the server, two administrators — with
WAL journaling (readers never block the writer) and a busy timeout (a writer
waits for another instead of failing); a database server does both itself.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import CreateIndex, CreateTable

SQLITE_POOL_SIZE = 40
BUSY_TIMEOUT_S = 30.0
# The dialects whose upsert (INSERT ... ON CONFLICT) the store uses.
DIALECTS = ("sqlite", "postgresql")
# PostgreSQL advisory lock held while the schema is created ("corral" in ASCII).
SCHEMA_LOCK_KEY = 0x636F7272616C


class Base(DeclarativeBase):
    """Declarative base of the state tables."""


class ProjectRow(Base):
    """The last recorded version of one project."""

    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    source_path: Mapped[str] = mapped_column(Text)
    model_json: Mapped[str] = mapped_column(Text)
    model_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class OperationRow(Base):
    """One entry of the operation log; ``outcome`` is started, ok or error."""

    __tablename__ = "operations"
    __table_args__ = (Index("ix_operations_project_id", "project", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    project: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")
    user: Mapped[str] = mapped_column(String(200))
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)


def database_url(text: str) -> URL:
    """A state database URL as the site gives it; ValueError when unusable."""
    try:
        url = make_url(text)
    except ArgumentError:
        raise ValueError(f"'{text}' is not a database URL (dialect+driver://...)") from None
    if url.get_backend_name() not in DIALECTS:
        raise ValueError(
            f"database '{url.render_as_string(hide_password=True)}': dialect "
            f"'{url.get_backend_name()}' is not supported (use {' or '.join(DIALECTS)})"
        )
    return url


def open_engine(url: URL) -> Engine:
    """An engine on ``url``; a SQLite database gets WAL and a busy timeout."""
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    # As many pooled connections as the server has request threads (anyio's 40):
    # past the pool, each checkout would open, configure and close a connection.
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S},
                           pool_size=SQLITE_POOL_SIZE)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _journal_in_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    return engine


def _journal_in_wal(cursor: sqlite3.Cursor) -> None:
    """Put the file in WAL mode (it stays so): done once, by the first opener.

    Changing the journal mode is refused at once, without the busy timeout,
    while another connection has the file open; so several processes opening
    a new file together retry until one of them has made the change.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")  # a file in memory stays "memory"
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def create_schema(engine: Engine) -> None:
    """Create missing tables and indexes; safe when another process races us.

    ``IF NOT EXISTS`` makes the check and the creation one statement, where
    ``metadata.create_all`` would check first and fail if it lost the race.
    That is enough on SQLite, whose writers take turns; PostgreSQL checks
    before it creates, so two servers starting on an empty database would
    both try to create a table: there the creation waits for a transaction
    advisory lock first, released when the transaction ends.
    """
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
        for table in Base.metadata.sorted_tables:
            connection.execute(CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                connection.execute(CreateIndex(index, if_not_exists=True))


class ContactRow(Base):
    """The last time a service host answered, and what it said then (``corral hosts``)."""

    __tablename__ = "host_contacts"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    facts_json: Mapped[str] = mapped_column(Text)


class LockRow(Base):
    """The lock of one project: at most one row per project, held by one process.

    ``holder`` is ``user@machine``; ``machine``, ``pid`` and ``pid_started``
    let a process on the same machine tell that the holder died (its pid gone,
    or reused by a process started at another time); ``token`` makes release
    and takeover compare-and-delete, so a process never frees a lock it lost.
    """

    __tablename__ = "locks"

    project: Mapped[str] = mapped_column(String(200), primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
    holder: Mapped[str] = mapped_column(String(400))
    machine: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    pid_started: Mapped[str] = mapped_column(String(40), default="")
    operation: Mapped[str] = mapped_column(String(100))
    since: Mapped[datetime] = mapped_column(DateTime)


class UserRow(Base):
    """A person who may use the server; quotas are None when unlimited."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    max_vms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_memory_mib: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_vcpus: Mapped[int | None] = mapped_column(Integer, nullable=True)


class TokenRow(Base):
    """An API token: only its SHA-256 is kept, unique, so a lookup is one index probe."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_user", "user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class OwnerRow(Base):
    """Who owns a project: the user whose operation first recorded it.

    A table of its own rather than a column of ``projects``, so a database
    made before users existed gains it without a migration; a project with no
    row here belongs to the administrators alone.
    """

    __tablename__ = "project_owners"
    __table_args__ = (Index("ix_project_owners_owner", "owner"),)

    project: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    since: Mapped[datetime] = mapped_column(DateTime)


class ShareRow(Base):
    """A project shared with a user: ``read`` or ``write``."""

    __tablename__ = "project_shares"
    __table_args__ = (Index("ix_project_shares_user", "user"),)

    project: Mapped[str] = mapped_column(String(200), primary_key=True)
    user: Mapped[str] = mapped_column(String(64), primary_key=True)
    access: Mapped[str] = mapped_column(String(10))
    since: Mapped[datetime] = mapped_column(DateTime)


class AuditRow(Base):
    """One audited request: who, from where, what, on what, and how it ended."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_user_at", "user", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    user: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(String(10))
    detail: Mapped[str] = mapped_column(Text, default="")


class JobRow(Base):
    """A long operation the server runs in the background (``up``, ``remove``, ...).

    ``state`` is queued, running, done, failed or interrupted; ``machine`` and
    ``instance`` name the server process that runs it (``server_instances``),
    so a job is marked interrupted once that process is known to be gone, and
    never while it lives, even when other servers share the database.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_owner", "owner"), Index("ix_jobs_state", "state"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20))
    machine: Mapped[str] = mapped_column(String(255))
    instance: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(40), nullable=True)
    result_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_json: Mapped[str | None] = mapped_column(Text, nullable=True)


class ServerInstanceRow(Base):
    """A server process that runs jobs, and when it last said it was alive.

    Each server writes its row when it starts and again every few seconds
    (its heartbeat). Several servers may share one database: a job whose
    server stopped beating, or whose process on this machine is gone, is one
    nobody will finish, and only such jobs are marked interrupted.
    """

    __tablename__ = "server_instances"

    instance: Mapped[str] = mapped_column(String(32), primary_key=True)
    machine: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    pid_started: Mapped[str] = mapped_column(String(40), default="")
    started_at: Mapped[datetime] = mapped_column(DateTime)
    seen_at: Mapped[datetime] = mapped_column(DateTime)


class JobEventRow(Base):
    """One progress event of a job (a note, a warning, progress), in order."""

    __tablename__ = "job_events"

    job: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    data_json: Mapped[str] = mapped_column(Text, default="{}")


class PortalSessionRow(Base):
    """A web portal login: only the SHA-256 of its cookie is kept.

    ``password_mark`` is the SHA-256 of the user's password hash when they
    logged in: a session whose mark no longer matches the user's row (the
    password changed, or the user was removed and perhaps added again) is over.
    """

    __tablename__ = "portal_sessions"
    __table_args__ = (Index("ix_portal_sessions_user", "user"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(64))
    password_mark: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class LoginFailureRow(Base):
    """A failed portal login, counted per source address and per user name, so
    every server sharing the database limits the same guesses."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_source_at", "source", "at"),
                      Index("ix_login_failures_user_at", "user", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(String(100))
    user: Mapped[str] = mapped_column(String(64))


class ProjectTextRow(Base):
    """A project's file as text, kept in the database: the one the portal edits and
    applies, and the one a project sent to the server as text was applied from."""

    __tablename__ = "project_texts"

    project: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    saved_by: Mapped[str] = mapped_column(String(64))
    saved_at: Mapped[datetime] = mapped_column(DateTime)

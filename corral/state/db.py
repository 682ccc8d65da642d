"""SQLite schema and engine setup for the state database.

Four tables: ``projects`` (the last applied version of each project file),
``operations`` (who did what to which project, when, and how it ended),
``locks`` (which process is changing which project right now) and
``host_contacts`` (when each service host last answered, and what it said).
The engine is set up for several processes at once — a CLI run beside the
server, two administrators — with WAL journaling (readers never block the
writer) and a busy timeout (a writer waits for another instead of failing).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import DateTime, Engine, Float, Index, Integer, String, Text, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import CreateIndex, CreateTable

BUSY_TIMEOUT_S = 30.0


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


def open_engine(path: Path) -> Engine:
    """An engine on the SQLite file at ``path`` with WAL and a busy timeout."""
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"timeout": BUSY_TIMEOUT_S},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    return engine


def create_schema(engine: Engine) -> None:
    """Create missing tables and indexes; safe when another process races us.

    ``IF NOT EXISTS`` makes the check and the creation one statement, where
    ``metadata.create_all`` would check first and fail if it lost the race.
    """
    with engine.begin() as connection:
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

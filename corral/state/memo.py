"""Answers of the state database kept until anything in it changes.

The server asks the same two questions on every request: which user a token
stands for, and which projects that user may see. Under load that is two
SQL queries per request, about half the cost of answering the site's status
from memory. Their answers change only when someone writes the database (a
token revoked, a user removed, a project shared), which is rare next to the
requests; so they are kept, and all of them are dropped at the first write.

"Has anything been written?" is SQLite's ``PRAGMA data_version``: on one
connection, its value changes whenever another connection (of this process
or any other) has committed to the file since it was last asked. The
counter keeps a read-only connection of its own that never writes, so every
commit by anyone counts. Asking costs a few microseconds, against the
hundreds a query through the engine costs. A value is kept under the
version read *before* it was computed, so a value is never older than the
version it is kept under. A database without such a counter (PostgreSQL, a
database in memory) keeps nothing: every question is asked.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# At most this many answers are kept between two writes (each unknown token
# presented would otherwise add one).
MEMO_LIMIT = 4096


class ChangeCounter:
    """SQLite's ``data_version`` of the file at ``path``, read on a connection that
    never writes; None when it cannot be read (the caller then keeps nothing)."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        self._connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                           timeout=timeout_s, check_same_thread=False,
                                           isolation_level=None)
        self._lock = threading.Lock()

    def version(self) -> int | None:
        with self._lock:
            try:
                row = self._connection.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error:
                return None
        return int(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class ReadMemo:
    """``get(key, compute)``: ``compute()``'s answer, kept until the database next
    changes. Thread-safe; values must be immutable (they are shared)."""

    def __init__(self, counter: ChangeCounter | None, limit: int = MEMO_LIMIT) -> None:
        self._counter = counter
        self._limit = limit
        self._lock = threading.Lock()
        self._version: int | None = None
        self._values: dict[Hashable, object] = {}

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        version = self._counter.version() if self._counter is not None else None
        if version is None:
            return compute()
        with self._lock:
            if version != self._version:
                self._values.clear()
                self._version = version
            elif key in self._values:
                return self._values[key]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            if self._version == version and len(self._values) < self._limit:
                self._values[key] = value
        return value

    def close(self) -> None:
        with self._lock:
            self._values.clear()
            self._version = None
        if self._counter is not None:
            self._counter.close()

"""How operations tell their caller what they are doing, without printing.

The CLI implements :class:`Reporter` with rich progress bars; the server with
its log; tests and library users get :class:`SilentReporter`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Progress(Protocol):
    def advance(self, label: str = "") -> None: ...


class Reporter(Protocol):
    def note(self, message: str) -> None:
        """A line worth showing a person (what was done, what is waited for)."""

    def warn(self, message: str) -> None:
        """Something went wrong but the operation goes on."""

    def progress(self, description: str, total: int) -> AbstractContextManager[Progress]:
        """A context manager over work on ``total`` items."""


class _NoProgress:
    def advance(self, label: str = "") -> None:
        return None


class SilentReporter:
    """Collects notes and warnings in memory; shows nothing."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.warnings: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Progress]:
        yield _NoProgress()

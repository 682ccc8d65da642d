"""The CLI's reporter: notes on stderr, rich progress bars when stderr is a terminal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class _Bar:
    def __init__(
        self, progress: Progress | None, task: TaskID | None, console: Console
    ) -> None:
        self._progress, self._task, self._console = progress, task, console

    def advance(self, label: str = "") -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)
            if label:
                self._progress.console.print(f"  {label}", highlight=False)
        elif label:
            self._console.print(f"  {label}", highlight=False)


class RichReporter:
    """Implements :class:`corral.ops.reporting.Reporter` for a person at a terminal (or a log)."""

    def __init__(self, quiet: bool = False) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        # One live display for every phase running at once (several projects
        # brought up together): each phase is a task in it, and it ends with
        # the last of them.
        self._lock = threading.Lock()
        self._live: Progress | None = None
        self._phases = 0

    def note(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, highlight=False, markup=False)

    def warn(self, message: str) -> None:
        self.console.print(f"warning: {message}", highlight=False, markup=False)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[_Bar]:
        if self.quiet or not self.console.is_terminal or total < 2:
            if not self.quiet and total:
                self.console.print(f"{description} ({total})", highlight=False, markup=False)
            yield _Bar(None, None, self.console if not self.quiet else Console(quiet=True))
            return
        with self._lock:
            if self._live is None:
                columns = (
                    TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(),
                )
                self._live = Progress(*columns, console=self.console, transient=False)
                self._live.start()
            live = self._live
            self._phases += 1
            task = live.add_task(description, total=total)
        try:
            yield _Bar(live, task, self.console)
        finally:
            with self._lock:
                self._phases -= 1
                if self._phases == 0:
                    live.stop()
                    self._live = None

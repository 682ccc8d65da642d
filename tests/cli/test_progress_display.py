"""The terminal's progress display: one for every phase running at once."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from corral.cli.console import RichReporter


def terminal_reporter() -> tuple[RichReporter, io.StringIO]:
    reporter = RichReporter()
    shown = io.StringIO()
    reporter.console = Console(file=shown, force_terminal=True, width=100, highlight=False)
    return reporter, shown


def test_projects_brought_up_together_share_one_display_until_the_last_ends() -> None:
    """``corral up A B``: each project's phase is a task of the one live display, not a
    display of its own fighting the others for the terminal's lines."""
    reporter, shown = terminal_reporter()
    inside = threading.Barrier(3)  # both phases open, and this thread
    leave = threading.Event()
    seen: list[object] = []

    def project(name: str) -> None:
        with reporter.progress(f"{name}: defining hosts", 3) as bar:
            seen.append(reporter._live)
            inside.wait(timeout=10)
            bar.advance(f"{name}-a defined")
            leave.wait(timeout=10)

    threads = [threading.Thread(target=project, args=(n,)) for n in ("ma", "mb")]
    for thread in threads:
        thread.start()
    inside.wait(timeout=10)
    leave.set()
    for thread in threads:
        thread.join(timeout=10)
    assert len(seen) == 2 and seen[0] is seen[1] is not None  # one display, two tasks
    assert reporter._live is None  # it ended with the last phase
    text = shown.getvalue()
    assert "ma: defining hosts" in text and "mb: defining hosts" in text
    assert "ma-a defined" in text and "mb-a defined" in text


def test_without_a_terminal_phases_are_lines() -> None:
    reporter = RichReporter()
    shown = io.StringIO()
    reporter.console = Console(file=shown, force_terminal=False, width=100)
    with reporter.progress("booting hosts", 2) as bar:
        assert reporter._live is None
        bar.advance("lab-web: ready")
    assert shown.getvalue() == "booting hosts (2)\n  lab-web: ready\n"

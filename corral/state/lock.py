"""Who is changing a project right now: lock holders and how to tell one is dead.

The lock itself is a row in the state database (``locks``, see
:mod:`corral.state.db`), so every process and every machine that shares the
database shares the lock. A holder is identified by ``user@machine``, its pid
and the pid's start time; a process on the same machine can therefore tell a
dead holder (pid gone, or reused by a later process) and take its lock over.
A holder on another machine is never presumed dead here; the locks of a
server whose heartbeat stopped are released with its jobs
(:meth:`corral.state.jobs.Jobs.interrupt_left_over`).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from corral.state.store import current_user


@dataclass(frozen=True, slots=True)
class Claimant:
    """This process, as it writes itself into a lock row."""

    token: str
    holder: str
    machine: str
    pid: int
    pid_started: str

    @classmethod
    def this_process(cls) -> Claimant:
        machine = socket.gethostname()
        pid = os.getpid()
        return cls(uuid.uuid4().hex, f"{current_user()}@{machine}", machine, pid,
                   process_started(pid))


@dataclass(frozen=True, slots=True)
class LockHolder:
    """The row of a held lock, as another process reads it."""

    project: str
    token: str
    holder: str
    machine: str
    pid: int
    pid_started: str
    operation: str
    since: datetime  # UTC, timezone-aware

    def describe(self) -> str:
        """``root@lab1 (pid 4242, corral up) since 2026-11-30 02:50:11 UTC``."""
        return (
            f"{self.holder} (pid {self.pid}, corral {self.operation}) "
            f"since {self.since:%Y-%m-%d %H:%M:%S} UTC"
        )


def process_started(pid: int) -> str:
    """When ``pid`` started, in clock ticks since boot (``/proc/PID/stat`` field 22).

    Empty where /proc cannot say (not Linux, no such process); with it a pid
    reused by a later process is told apart from the holder that died.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: split after it.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_is_dead(holder: LockHolder, machine: str) -> bool:
    """True only when the holder ran on ``machine`` and its process is gone."""
    return holder.machine == machine and process_is_gone(holder.pid, holder.pid_started)


def process_is_gone(pid: int, pid_started: str) -> bool:
    """True when process ``pid`` of this machine, started at ``pid_started`` (see
    :func:`process_started`), has ended: no such pid, or one started at another time."""
    if not _alive(pid):
        return True
    started = process_started(pid)
    return bool(pid_started and started and started != pid_started)

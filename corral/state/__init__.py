"""State: recorded projects and the operation log (a convenience; libvirt is the truth),
the server's users, tokens, shares and audit log (corral.state.accounts, .audit), and its
jobs (corral.state.jobs)."""

from corral.state.lock import Claimant, LockHolder, holder_is_dead
from corral.state.store import (
    DEFAULT_PATH,
    OperationNote,
    OperationRecord,
    ProjectRecord,
    StateStore,
    current_user,
)

__all__ = [
    "DEFAULT_PATH",
    "Claimant",
    "LockHolder",
    "OperationNote",
    "OperationRecord",
    "ProjectRecord",
    "StateStore",
    "current_user",
    "holder_is_dead",
]

"""Tables for users, tokens, shares and the audit log (their JSON lives with the data)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from rich.table import Table

from corral.cli.render import stdout_console

if TYPE_CHECKING:
    from corral.ops.access import ProjectShares
    from corral.state.accounts import Quota, TokenRecord, UserRecord
    from corral.state.audit import AuditEntry


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "-"


def _limit(value: int | None, unit: str = "") -> str:
    return "unlimited" if value is None else f"{value}{unit}"


def quota(limits: Quota) -> str:
    return (f"VMs {_limit(limits.max_vms)}, memory {_limit(limits.max_memory_mib, ' MiB')}, "
            f"vCPUs {_limit(limits.max_vcpus)}")


def users(rows: Iterable[UserRecord]) -> None:
    table = Table("name", "admin", "password", "max VMs", "max memory", "max vCPUs", "created")
    for user in rows:
        table.add_row(
            user.name, "yes" if user.admin else "no", "set" if user.has_password else "-",
            _limit(user.quota.max_vms), _limit(user.quota.max_memory_mib, " MiB"),
            _limit(user.quota.max_vcpus), _when(user.created_at),
        )
    stdout_console().print(table)


def tokens(rows: Iterable[TokenRecord]) -> None:
    table = Table("id", "user", "name", "scope", "created", "last used", "revoked")
    for token in rows:
        table.add_row(str(token.id), token.user, token.label or "-", token.scope,
                      _when(token.created_at), _when(token.last_used_at),
                      _when(token.revoked_at))
    stdout_console().print(table)


def shares(found: ProjectShares) -> None:
    console = stdout_console()
    console.print(f"project {found.project}, owner: "
                  f"{found.owner or 'none (the administrators alone)'}", markup=False)
    table = Table("user", "access", "since")
    for share in found.shares:
        table.add_row(share.user, share.access, _when(share.since))
    console.print(table)


def audit(rows: Iterable[AuditEntry]) -> None:
    table = Table("time (UTC)", "user", "source", "action", "target", "result", "detail")
    for entry in rows:
        table.add_row(entry.at.strftime("%Y-%m-%d %H:%M:%S"), entry.user, entry.source,
                      entry.action, entry.target, entry.result, entry.detail)
    stdout_console().print(table)

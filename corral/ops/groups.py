"""Groups of VMs as targets: ``PROJECT.@GROUP``, ``start``/``stop -h @GROUP`` and
``status -g GROUP``.

A group is declared in the project file (``group NAME { members ... }``); its
members are read from the project as the last ``up``, ``build`` or
``upgrade`` recorded it, as the rest of ``status`` does for hosts that no
service host has. Expansion happens here, in the operations layer, so the
CLI on this machine, the CLI through a server and the REST routes all act
on the same members. Access to the project is checked by the caller before
any group is looked up, so a hidden project's groups are not found either.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

from corral.errors import InvalidRequest, NotFoundError
from corral.model import Project
from corral.ops.journal import recorded_project
from corral.ops.requests import check_name
from corral.ops.session import Session
from corral.ops.status import StatusReport

GROUP_MARK = "@"


def group_of(target: str) -> tuple[str, str] | None:
    """``(project, group)`` of a ``PROJECT.@GROUP`` target, None for any other."""
    project, dot, rest = target.partition(".")
    if not dot or not rest.startswith(GROUP_MARK):
        return None
    group = rest[len(GROUP_MARK):]
    check_name("project", project)
    if not group:
        raise InvalidRequest(f"'{target}' names no group", hint="write PROJECT.@GROUP")
    check_name("group", group)
    return project, group


def group_members(session: Session, project: str, group: str) -> tuple[str, ...]:
    """The members of ``group`` in the recorded ``project``; NotFoundError when the
    project or the group is not known."""
    check_name("project", project)
    check_name("group", group)
    record = recorded_project(session, project)
    if record is None:
        raise NotFoundError(f"project '{project}' not found")
    model = Project.model_validate(json.loads(record.model_json))
    members = model.group_members(group)
    if members is None:
        known = ", ".join(sorted(model.groups)) or "none"
        raise NotFoundError(
            f"project '{project}' has no group '{group}'",
            hint=f"its groups: {known} (as its last up, build or upgrade recorded them)",
        )
    return members


def expand_targets(session: Session, targets: list[str]) -> list[str]:
    """``targets`` with every ``PROJECT.@GROUP`` replaced by ``PROJECT.HOST`` of each
    member, each VM once, in the order given."""
    expanded: dict[str, None] = {}
    for target in targets:
        group = group_of(target)
        if group is None:
            expanded.setdefault(target)
            continue
        for member in group_members(session, *group):
            expanded.setdefault(f"{group[0]}.{member}")
    return list(expanded)


def expand_hosts(session: Session, project: str,
                 hosts: list[str] | None) -> list[str] | None:
    """``hosts`` of ``project`` (``start -h``, ``stop -h``) with every ``@GROUP``
    replaced by its members, each host once; None (every host) stays None."""
    if hosts is None:
        return None
    expanded: dict[str, None] = {}
    for host in hosts:
        if host.startswith(GROUP_MARK):
            expanded.update(dict.fromkeys(group_members(session, project, host[1:])))
        else:
            expanded.setdefault(host)
    return list(expanded)


def group_status(session: Session, report: StatusReport, project: str,
                 group: str) -> StatusReport:
    """``report`` cut to the rows of ``group``'s members; the service host rows
    count only those."""
    members = set(group_members(session, project, group))
    rows = [r for r in report.rows if r.project == project and r.host in members]
    hosts = [replace(h, vms=sum(r.service_host == h.name for r in rows))
             for h in report.service_hosts]
    return StatusReport(rows, report.silent, hosts, report.read_at)


def status_of_group(
    session: Session, project: str | None, group: str | None,
    read: Callable[[str | None], StatusReport],
) -> StatusReport:
    """``read(project)`` (the status the caller may see of ``project``, or of every
    project), cut to ``group``'s members when one is named. A group is named
    within its project: group names are the project file's, not the site's."""
    if group is None:
        return read(project)
    if project is None:
        raise InvalidRequest(f"group '{group}' needs its project",
                             hint="corral status -p PROJECT -g GROUP")
    check_name("group", group)
    return group_status(session, read(project), project, group)

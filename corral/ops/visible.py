"""What an identity may see of the site: ``status`` and ``list`` cut to its projects.

The server answers ``status`` and ``list`` for everyone, but a user sees only
the projects they own or that are shared with them (an administrator, and
the site administrator at the machine, see everything). The cut is made
here, once, so every caller shows the same thing; the service host rows stay
(they describe the site, not a project) with ``vms`` counting the rows the
identity sees.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace

from corral.ops.access import Access, authorize, authorize_action, visible_projects
from corral.ops.groups import status_of_group
from corral.ops.identity import Identity, require_full_scope
from corral.ops.projects import ProjectSummary, list_projects
from corral.ops.requests import check_name
from corral.ops.session import Session
from corral.ops.status import DEFAULT_TIMEOUT_S, StatusReport, status_report
from corral.state.accounts import Accounts
from corral.state.store import StateStore


def visible_status(
    session: Session,
    project: str | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    site_reading: Callable[[], StatusReport] | None = None,
    group: str | None = None,
) -> StatusReport:
    """:func:`~corral.ops.status.status_report` for the session's identity: one
    project it may read, or every project it may see; with ``group``, only the
    rows of that group of ``project`` (:mod:`corral.ops.groups`).

    ``site_reading`` gives the whole site's report (every project, read as the
    site administrator) instead of a survey of the session's own: the server
    shares one reading among its requests. The answer is cut the same way
    either way, after the caller has been authorised.
    """
    return status_of_group(session, project, group, lambda name: _visible(
        session, name, timeout_s=timeout_s, site_reading=site_reading))


def _visible(
    session: Session,
    project: str | None,
    *,
    timeout_s: float,
    site_reading: Callable[[], StatusReport] | None,
) -> StatusReport:
    identity = session.identity
    if project is not None:
        authorize_action(session, identity, project, "status")
        if site_reading is None:
            return status_report(session, project, timeout_s=timeout_s)
        check_name("project", project)
        return _cut(site_reading(), {project})
    report = status_report(session, None, timeout_s=timeout_s) if site_reading is None \
        else site_reading()
    if identity.admin:
        return report
    require_full_scope(identity)
    return site_report_for(identity, report, session.require_store())


def site_report_for(identity: Identity, report: StatusReport, store: StateStore) -> StatusReport:
    """The whole site's ``report`` as ``identity`` (a full-scope credential) may
    see it: all of it for an administrator, else the rows of the projects it
    owns or that are shared with it, in one query."""
    return cut_to(report, projects_seen_by(identity, store))


def projects_seen_by(identity: Identity, store: StateStore) -> tuple[str, ...] | None:
    """The projects a full-scope ``identity`` may see in the site's report, sorted;
    None for an administrator, who sees all of it."""
    return None if identity.admin else tuple(Accounts(store).visible_to(identity.name))


def cut_to(report: StatusReport, projects: Collection[str] | None) -> StatusReport:
    """``report`` cut to ``projects`` (None: all of it), as
    :func:`projects_seen_by` names them."""
    return report if projects is None else _cut(report, set(projects))


def _cut(report: StatusReport, projects: set[str]) -> StatusReport:
    """The rows of ``projects``; the service host rows counting only those."""
    rows = [r for r in report.rows if r.project in projects]
    hosts = [replace(h, vms=sum(r.service_host == h.name for r in rows))
             for h in report.service_hosts]
    return StatusReport(rows, report.silent, hosts, report.read_at)


def visible_list(session: Session) -> list[ProjectSummary]:
    """:func:`~corral.ops.projects.list_projects` cut to what the identity may see."""
    identity = session.identity
    found = list_projects(session)
    if identity.admin:
        return found
    seen = set(visible_projects(session, identity))
    return [p for p in found if p.name in seen]


def authorize_file(session: Session, project: str, action: str) -> None:
    """Authorise ``action`` (``plan``, ``show``) on a project file the caller brings.

    A project the database has recorded needs the access the action needs; a
    name nobody has recorded is the caller's to look at when they could create
    it (``up`` would make them its owner), so a user can plan a new project.
    """
    identity = session.identity
    store = session.require_store()
    if store.get_project(project) is None and Accounts(store).owner(project) is None:
        authorize(session, identity, project, Access.WRITE, creating=True)
        return
    authorize_action(session, identity, project, action)

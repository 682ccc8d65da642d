"""The site's other projects, as the state database recorded them, checked for
UUIDs and MACs that a project about to be planned shares with them
(:mod:`corral.plan.identities`)."""

from __future__ import annotations

import json

from pydantic import ValidationError

from corral.errors import CorralError, SourceErrors
from corral.model import Project
from corral.ops.session import Session
from corral.plan.identities import identity_clashes
from corral.state.accounts import Accounts


def recorded_projects(session: Session) -> list[Project]:
    """Every project the state database recorded; none without a database. A
    record that cannot be read is skipped with a warning: it cannot be compared."""
    store = session.store
    if store is None:
        return []
    try:
        records = store.list_projects()
    except CorralError as error:
        session.warn(f"recorded projects not read, so not checked for shared UUIDs "
                     f"and MACs: {error}")
        return []
    projects = []
    for record in records:
        try:
            projects.append(Project.model_validate(json.loads(record.model_json)))
        except (ValueError, ValidationError) as error:
            session.warn(f"recorded project {record.name} not read, so not checked for "
                         f"shared UUIDs and MACs: {error}")
    return projects


def refuse_site_clashes(session: Session, project: Project) -> None:
    """Raise every UUID or MAC of ``project`` that a recorded project holds too;
    a user of the server is told the other host's name only in projects they see."""
    others = recorded_projects(session)
    problems = identity_clashes(project, others, _hidden(session, others))
    if problems:
        raise SourceErrors(problems)


def _hidden(session: Session, others: list[Project]) -> set[str]:
    """The recorded projects the session's identity may not see (none for the site
    administrator at the machine or an administrator of the server)."""
    identity = session.identity
    store = session.store
    if identity.local or identity.admin or store is None:
        return set()
    try:
        seen = set(Accounts(store).visible_to(identity.name))
    except CorralError:
        return {p.name for p in others}
    return {p.name for p in others} - seen

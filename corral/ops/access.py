"""Who may do what to which project: ownership, shares and the authorisation check.

Administrators may do everything. A user may do everything to the projects
they own (the user whose operation first recorded the project) and what a
share gives them on others: ``read`` allows what changes nothing (the
:data:`ACTIONS` marked read: status, show, plan, the console log), ``write``
everything the owner may do except sharing. A project a user may not see is
refused as :class:`~corral.errors.HiddenProject` — "not found", the very
answer for a project that does not exist — so names of other people's
projects never leak; the reason goes to the audit log. A metrics-only token
may read metrics and nothing else.

:func:`authorize` records nothing itself: the caller's :func:`audited` scope
around the whole request records the refusal once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from corral.errors import Forbidden, HiddenProject, InvalidRequest, NotFoundError
from corral.ops.audit import audited
from corral.ops.identity import Identity, require_full_scope
from corral.ops.requests import check_name
from corral.ops.session import Session
from corral.state.accounts import Accounts, ShareRecord


class Access(StrEnum):
    """The kind of access a request needs, and the kinds a share gives."""

    READ = "read"
    WRITE = "write"


# The access each project operation needs; "read" is all a read-only share allows.
ACTIONS: dict[str, Access] = {
    **{name: Access.READ for name in ("status", "show", "plan", "vm.log", "vm.describe",
                                      "ssh", "inventory")},
    **{name: Access.WRITE for name in (
        "up", "build", "upgrade", "start", "stop", "suspend", "remove", "vm.reboot",
        "vm.shutdown",
        "vm.destroy", "vm.pause", "vm.resume", "vm.suspend", "vm.restore", "vm.mem-set",
        "vm.vcpu-set", "vm.migrate", "vm.console",
    )},
}


@dataclass(frozen=True, slots=True)
class ProjectShares:
    """A project's owner (None: the administrators') and whom it is shared with."""

    project: str
    owner: str | None
    shares: tuple[ShareRecord, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "project": self.project, "owner": self.owner,
            "shares": [{"user": s.user, "access": s.access, "since": s.since.isoformat()}
                       for s in self.shares],
        }


# The operations that create a project the database has not recorded (their
# caller becomes its owner); every other one needs a project that exists.
CREATING = frozenset({"up", "build", "upgrade"})


def authorize(session: Session, identity: Identity, project: str, access: Access,
              *, creating: bool = False) -> None:
    """Return when ``identity`` may have ``access`` to ``project``, else raise
    :class:`HiddenProject` (may not see it) or :class:`Forbidden` (sees it, read only).

    A project name the database has never recorded may be created by any user
    (``creating``: their ``up`` makes them its owner); anything else a user asks
    of it answers as a hidden project does, so that a name taken by someone
    else cannot be told from a free one.
    """
    require_full_scope(identity)
    if identity.admin:
        return
    store = session.require_store()
    accounts = Accounts(store)
    owner = accounts.owner(project)
    if owner == identity.name:
        return
    shared = accounts.share_of(project, identity.name)
    if shared is None:
        if creating and owner is None and store.get_project(project) is None:
            return
        whose = f"owned by '{owner}'" if owner else "the administrators'"
        raise HiddenProject(project, f"project '{project}' is {whose} and not shared with "
                                     f"'{identity.name}'")
    if access is Access.WRITE and shared == Access.READ:
        raise Forbidden(f"project '{project}' is shared with user '{identity.name}' "
                        "read-only: it may be looked at, not changed")


def authorize_action(session: Session, identity: Identity, project: str, action: str) -> None:
    """:func:`authorize` for the access that operation ``action`` needs."""
    needed = ACTIONS.get(action)
    if needed is None:
        raise InvalidRequest(f"unknown project operation '{action}'")
    authorize(session, identity, project, needed, creating=action in CREATING)


def visible_projects(session: Session, identity: Identity) -> list[str]:
    """The recorded projects ``identity`` may see: all for an administrator, else
    those they own and those shared with them."""
    require_full_scope(identity)
    store = session.require_store()
    if identity.admin:
        return [p.name for p in store.list_projects()]
    return Accounts(store).visible_to(identity.name)


def share_project(
    session: Session, identity: Identity, project: str, user: str, access: Access
) -> ShareRecord:
    """Share ``project`` with ``user`` (its owner or an administrator may)."""
    with audited(session, identity, "project.share", f"{project} {user} {access}") as note:
        accounts, owner = _manageable(session, identity, project)
        if accounts.user(user) is None:
            raise NotFoundError(f"user '{user}' does not exist",
                                hint="corral user list shows the users")
        if owner == user:
            raise InvalidRequest(f"user '{user}' owns project '{project}' already")
        record = accounts.share(project, user, access.value)
        note.detail = f"{project} shared with {user} ({access})"
    return record


def unshare_project(session: Session, identity: Identity, project: str, user: str) -> None:
    """Stop sharing ``project`` with ``user``."""
    with audited(session, identity, "project.unshare", f"{project} {user}") as note:
        accounts, _owner = _manageable(session, identity, project)
        if not accounts.unshare(project, user):
            raise NotFoundError(f"project '{project}' is not shared with user '{user}'")
        note.detail = f"{project} no longer shared with {user}"


def project_shares(session: Session, identity: Identity, project: str) -> ProjectShares:
    """Owner and shares of ``project`` (for its owner or an administrator)."""
    accounts, owner = _manageable(session, identity, project)
    return ProjectShares(project, owner, tuple(accounts.shares(project=project)))


def _manageable(session: Session, identity: Identity, project: str) -> tuple[Accounts, str | None]:
    """The accounts and the owner of ``project``, when ``identity`` may manage its
    shares; a project not recorded is not found, one not theirs hidden."""
    check_name("project", project)
    require_full_scope(identity)
    store = session.require_store()
    accounts = Accounts(store)
    owner = accounts.owner(project)
    if not identity.admin and owner != identity.name:
        authorize(session, identity, project, Access.READ)  # hidden unless shared
        raise Forbidden(f"only the owner of project '{project}' or an administrator "
                        "may change or list its shares")
    if store.get_project(project) is None:
        raise NotFoundError(f"project '{project}' not found",
                            hint="a project is known once `corral up` or `build` recorded it")
    return accounts, owner

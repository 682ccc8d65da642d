"""Users: add, list, remove, passwords, quotas, and logging in with a password.

Only administrators add and remove users and set quotas; a user may change
their own password. A new user gets a first API token, returned once. The
last administrator cannot be removed, so the server always has someone who
may manage it (the site administrator at the machine could add one again,
but the server's users could not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from argon2 import PasswordHasher

from corral.errors import ConflictError, InvalidRequest, NotAuthenticated, NotFoundError
from corral.model import values
from corral.ops.audit import audited, record
from corral.ops.credentials import check_password, hash_password
from corral.ops.identity import Identity, Scope, require_admin, require_full_scope
from corral.ops.session import Session
from corral.ops.tokens import NewToken, issue
from corral.state.accounts import Accounts, Quota, UserRecord, UserRemoval

MIN_PASSWORD = 8
FIRST_TOKEN = "first token"


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user just added, with their first token (its only appearance)."""

    user: UserRecord
    token: NewToken

    def as_json(self) -> dict[str, object]:
        return {**user_json(self.user), "token": self.token.token, "token_id": self.token.record.id}


def user_json(user: UserRecord) -> dict[str, object]:
    return {
        "name": user.name, "admin": user.admin, "created_at": user.created_at.isoformat(),
        "has_password": user.has_password,
        "quota": {"max_vms": user.quota.max_vms, "max_memory_mib": user.quota.max_memory_mib,
                  "max_vcpus": user.quota.max_vcpus},
    }


def check_user_name(name: str) -> str:
    try:
        return values.user_name(name)
    except ValueError as error:
        raise InvalidRequest(str(error)) from None


def check_quota_values(quota: Quota) -> Quota:
    for field, value in (("max VMs", quota.max_vms), ("max memory", quota.max_memory_mib),
                         ("max vCPUs", quota.max_vcpus)):
        if value is not None and value < 0:
            raise InvalidRequest(f"quota {field} {value}: give 0 or more (none: unlimited)")
    return quota


def add_user(
    session: Session, identity: Identity, name: str, *, admin: bool = False,
    quota: Quota | None = None,
) -> NewUser:
    """Add user ``name`` and issue their first token."""
    with audited(session, identity, "user.add", name) as note:
        require_admin(identity, f"add user '{name}'")
        check_user_name(name)
        quota = check_quota_values(quota or Quota())
        accounts = Accounts(session.require_store())
        user = accounts.add_user(name, admin, quota)
        if user is None:
            raise ConflictError(f"user '{name}' exists already")
        token = issue(accounts, name, FIRST_TOKEN, Scope.FULL)
        note.detail = f"{'administrator' if admin else 'user'}, token {token.record.id}"
    return NewUser(user, token)


def list_users(session: Session, identity: Identity) -> list[UserRecord]:
    """Every user for an administrator; a user sees only themselves."""
    require_full_scope(identity)
    accounts = Accounts(session.require_store())
    if identity.admin:
        return accounts.users()
    me = accounts.user(identity.name)
    return [me] if me is not None else []


def get_user(session: Session, identity: Identity, name: str) -> UserRecord:
    if identity.name != name:
        require_admin(identity, f"look at user '{name}'")
    require_full_scope(identity)
    found = Accounts(session.require_store()).user(name)
    if found is None:
        raise NotFoundError(f"user '{name}' does not exist",
                            hint="corral user list shows the users")
    return found


def removal_preview(session: Session, identity: Identity, name: str) -> UserRemoval:
    """What :func:`remove_user` would take with it (nothing is changed)."""
    require_admin(identity, f"remove user '{name}'")
    get_user(session, identity, name)
    accounts = Accounts(session.require_store())
    return UserRemoval(
        name, len(accounts.tokens(name)), len(accounts.shares(user=name)),
        tuple(accounts.owned_by(name)),
    )


def remove_user(session: Session, identity: Identity, name: str) -> UserRemoval:
    """Remove user ``name`` with their tokens and the shares they were given; the
    projects they own stay (their VMs untouched) and become the administrators'
    alone. The last administrator is never removed."""
    with audited(session, identity, "user.remove", name) as note:
        require_admin(identity, f"remove user '{name}'")
        accounts = Accounts(session.require_store())
        removed = accounts.remove_user(name)
        if removed is None:
            if accounts.user(name) is None:
                raise NotFoundError(f"user '{name}' does not exist",
                                    hint="corral user list shows the users")
            raise ConflictError(f"user '{name}' is the last administrator",
                                hint="add another administrator first (corral user add --admin)")
        note.detail = describe_removal(removed)
    return removed


def describe_removal(removal: UserRemoval) -> str:
    projects = ", ".join(removal.projects) or "none"
    return (f"{removal.tokens} token(s) deleted, {removal.shares} share(s) withdrawn; "
            f"projects owned (now the administrators' alone, VMs untouched): {projects}")


QUOTA_FIELDS = ("max_vms", "max_memory_mib", "max_vcpus")
UNLIMITED = ("none", "unlimited")


def parse_limit(text: str, what: str, *, size: bool = False) -> int | None:
    """A quota limit as a command line or a form gives it: a whole number (for
    memory also a size such as ``4G``; a plain number is MiB), or ``none``."""
    if text.strip().lower() in UNLIMITED:
        return None
    try:
        value = values.size_mib(text) if size else int(text)
    except ValueError:
        kind = "a size (4096, 4G)" if size else "a whole number"
        raise InvalidRequest(f"{what} '{text}': give {kind}, or none for unlimited") from None
    if value < 0:
        raise InvalidRequest(f"{what} '{text}': give 0 or more, or none for unlimited")
    return value


def change_quota(
    session: Session, identity: Identity, name: str, changes: Mapping[str, int | None]
) -> UserRecord:
    """Change the given fields of user ``name``'s quota (None: unlimited); the
    fields not given keep their values."""
    unknown = sorted(set(changes) - set(QUOTA_FIELDS))
    if unknown:
        raise InvalidRequest(f"unknown quota field(s) {', '.join(unknown)}: "
                             f"give {', '.join(QUOTA_FIELDS)}")
    current = get_user(session, identity, name).quota
    return set_quota(session, identity, name, replace(current, **changes))


def set_quota(session: Session, identity: Identity, name: str, quota: Quota) -> UserRecord:
    """Replace user ``name``'s quota (None in a field: unlimited)."""
    with audited(session, identity, "user.quota", name) as note:
        require_admin(identity, f"set the quota of user '{name}'")
        accounts = Accounts(session.require_store())
        if not accounts.set_quota(name, check_quota_values(quota)):
            raise NotFoundError(f"user '{name}' does not exist",
                                hint="corral user list shows the users")
        note.detail = (f"max_vms={quota.max_vms} max_memory_mib={quota.max_memory_mib} "
                       f"max_vcpus={quota.max_vcpus}")
        found = accounts.user(name)
        if found is None:
            raise NotFoundError(f"user '{name}' does not exist")
    return found


def set_password(
    session: Session, identity: Identity, name: str, password: str,
    hasher: PasswordHasher | None = None,
) -> None:
    """Set user ``name``'s portal password (themselves, or an administrator)."""
    with audited(session, identity, "user.passwd", name):
        if identity.name != name:
            require_admin(identity, f"set the password of user '{name}'")
        require_full_scope(identity)
        if len(password) < MIN_PASSWORD:
            raise InvalidRequest(f"password of user '{name}': give at least "
                                 f"{MIN_PASSWORD} characters")
        accounts = Accounts(session.require_store())
        if not accounts.set_password_hash(name, hash_password(password, hasher)):
            raise NotFoundError(f"user '{name}' does not exist",
                                hint="corral user list shows the users")


def login(
    session: Session, name: str, password: str, source: str,
    hasher: PasswordHasher | None = None,
) -> Identity:
    """The identity of user ``name`` when ``password`` is theirs, else
    :class:`NotAuthenticated`. An unknown user or one without a password costs
    one argon2 verification as well, so timing tells no names."""
    accounts = Accounts(session.require_store())
    stored = accounts.password_hash(name)
    matched, rehashed = check_password(stored, password, hasher)
    user = accounts.user(name) if matched else None
    attempt = Identity(name=name[:64], admin=False, source=source)
    if user is None:
        record(session, attempt, "login", name[:200], "refused",
               "wrong password" if stored is not None else "no such user or no password")
        raise NotAuthenticated("user name or password is wrong")
    if rehashed is not None:
        accounts.set_password_hash(name, rehashed)
    record(session, attempt, "login", name, "ok")
    return Identity(name=user.name, admin=user.admin, scope=Scope.FULL, source=source)

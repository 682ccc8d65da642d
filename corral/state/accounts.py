"""Users, API tokens, project owners and shares: rows of the state database.

Plain storage with no policy: who may do what is decided in
:mod:`corral.ops.access` and :mod:`corral.ops.users`. Every change is one
transaction, so a failure leaves either all of it or none; the rows that
name a user go with the user (:meth:`Accounts.remove_user`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, bindparam, delete, func, select, union, update
from sqlalchemy.orm import Session

from corral.state.db import OwnerRow, ShareRow, TokenRow, UserRow
from corral.state.store import StateStore, aware, now

# How precisely a token's last use is kept (see Accounts.use_token).
LAST_USE_PRECISION = timedelta(minutes=1)

# The two queries every request of the server makes, built once: building a
# statement costs more than SQLite takes to answer it.
_TOKEN_IN_USE = (
    select(TokenRow.__table__, UserRow.admin.label("holder_admin"))
    .outerjoin(UserRow, UserRow.name == TokenRow.user)
    .where(TokenRow.token_hash == bindparam("token_hash"))
)
_VISIBLE_TO = union(
    select(OwnerRow.project).where(OwnerRow.owner == bindparam("user")),
    select(ShareRow.project).where(ShareRow.user == bindparam("user")),
).order_by("project")


@dataclass(frozen=True, slots=True)
class Quota:
    """Limits over all of a user's own projects; None is unlimited."""

    max_vms: int | None = None
    max_memory_mib: int | None = None
    max_vcpus: int | None = None


@dataclass(frozen=True, slots=True)
class TokenUse:
    """A token presented, and whether its user is an administrator (None when the
    user is gone)."""

    token: TokenRecord
    admin: bool | None


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as stored; ``has_password`` says whether they can log in to the portal."""

    name: str
    admin: bool
    created_at: datetime
    quota: Quota
    has_password: bool


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token without its secret: only the SHA-256 of that was ever kept."""

    id: int
    user: str
    label: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class ShareRecord:
    """Project ``project`` shared with ``user`` for ``access`` (read or write)."""

    project: str
    user: str
    access: str
    since: datetime


@dataclass(frozen=True, slots=True)
class UserRemoval:
    """What removing a user took with it."""

    user: str
    tokens: int
    shares: int
    projects: tuple[str, ...]  # owned, now the administrators' alone


class Accounts:
    """The user and access tables of the state database ``store``."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    # -- users --------------------------------------------------------------------

    def add_user(self, name: str, admin: bool, quota: Quota) -> UserRecord | None:
        """Insert user ``name``; None when that name is taken (one statement, no race)."""
        statement = self._store.insert(UserRow).values(
            name=name, admin=admin, password_hash=None, created_at=now(),
            max_vms=quota.max_vms, max_memory_mib=quota.max_memory_mib,
            max_vcpus=quota.max_vcpus,
        ).on_conflict_do_nothing(index_elements=[UserRow.name]).returning(UserRow.name)
        with self._write() as session:
            if session.execute(statement).first() is None:  # (an ORM insert's rowcount is -1)
                return None
        return self.user(name)

    def user(self, name: str) -> UserRecord | None:
        with self._read() as session:
            row = session.get(UserRow, name)
            return _user(row) if row is not None else None

    def users(self) -> list[UserRecord]:
        with self._read() as session:
            return [_user(r) for r in session.scalars(select(UserRow).order_by(UserRow.name))]

    def password_hash(self, name: str) -> str | None:
        """The stored argon2 hash of ``name``'s password; None for no user or no password."""
        with self._read() as session:
            row = session.get(UserRow, name)
            return row.password_hash if row is not None else None

    def set_password_hash(self, name: str, password_hash: str) -> bool:
        """Store a new hash; False when there is no such user."""
        statement = update(UserRow).where(UserRow.name == name).values(
            password_hash=password_hash
        )
        with self._write() as session:
            return _count(session.execute(statement)) == 1

    def set_quota(self, name: str, quota: Quota) -> bool:
        statement = update(UserRow).where(UserRow.name == name).values(
            max_vms=quota.max_vms, max_memory_mib=quota.max_memory_mib,
            max_vcpus=quota.max_vcpus,
        )
        with self._write() as session:
            return _count(session.execute(statement)) == 1

    def remove_user(self, name: str) -> UserRemoval | None:
        """Delete the user with their tokens, shares and ownerships, unless they are
        the last administrator; None when the user was not deleted (see :meth:`user`).

        The last-administrator condition is part of the DELETE itself, so two
        administrators removing each other at once cannot both succeed.
        """
        others = select(func.count()).select_from(UserRow).where(
            UserRow.admin.is_(True), UserRow.name != name
        ).scalar_subquery()
        with self._write() as session:
            removed = session.execute(
                delete(UserRow).where(UserRow.name == name, (~UserRow.admin) | (others > 0))
            )
            if _count(removed) == 0:
                return None
            owned = tuple(session.scalars(
                select(OwnerRow.project).where(OwnerRow.owner == name).order_by(OwnerRow.project)
            ))
            session.execute(delete(OwnerRow).where(OwnerRow.owner == name))
            tokens = _count(session.execute(delete(TokenRow).where(TokenRow.user == name)))
            shares = _count(session.execute(delete(ShareRow).where(ShareRow.user == name)))
        return UserRemoval(name, tokens, shares, owned)

    # -- tokens -------------------------------------------------------------------

    def add_token(self, user: str, label: str, token_hash: str, scope: str) -> TokenRecord:
        row = TokenRow(user=user, label=label, token_hash=token_hash, scope=scope,
                       created_at=now())
        with self._write() as session:
            session.add(row)
            session.flush()
            return _token(row)

    def token(self, token_id: int) -> TokenRecord | None:
        with self._read() as session:
            row = session.get(TokenRow, token_id)
            return _token(row) if row is not None else None

    def tokens(self, user: str | None = None) -> list[TokenRecord]:
        query = select(TokenRow).order_by(TokenRow.id)
        if user is not None:
            query = query.where(TokenRow.user == user)
        with self._read() as session:
            return [_token(r) for r in session.scalars(query)]

    def use_token(self, token_hash: str) -> TokenUse | None:
        """The token with this hash and whether its user is an administrator, in
        one indexed lookup; its last use set to now if it is not revoked.

        Checked on every request of the server, so it is a plain SQL query
        (the ORM costs several times the database's own work) whose answer is
        kept until the database next changes (:mod:`corral.state.memo`), and
        the last use is written only when the one recorded is older than
        :data:`LAST_USE_PRECISION`: a write per request would serialise the
        server's readers on the database's write lock.
        """
        known = self._store.memo.get(("token", token_hash),
                                     lambda: self._token_in_use(token_hash))
        if known is None:
            return None
        found, holder_admin = known
        moment = now()
        if not found.revoked and (found.last_used_at is None
                                  or aware(moment) - found.last_used_at >= LAST_USE_PRECISION):
            with self._write() as session:
                session.execute(update(TokenRow).where(TokenRow.id == found.id)
                                .values(last_used_at=moment))
            found = replace(found, last_used_at=aware(moment))
        return TokenUse(found, holder_admin)

    def _token_in_use(self, token_hash: str) -> tuple[TokenRecord, bool | None] | None:
        with self._store.guard(), self._store.engine.connect() as connection:
            row = connection.execute(_TOKEN_IN_USE, {"token_hash": token_hash}).first()
        return None if row is None else (_token(cast(TokenRow, row)), row.holder_admin)

    def revoke_token(self, token_id: int) -> TokenRecord | None:
        """Revoke token ``token_id`` (it stays listed, revoked); None when unknown.
        A token revoked before keeps its first revocation time."""
        statement = update(TokenRow).where(
            TokenRow.id == token_id, TokenRow.revoked_at.is_(None)
        ).values(revoked_at=now())
        with self._write() as session:
            session.execute(statement)
        return self.token(token_id)

    # -- owners and shares --------------------------------------------------------

    def claim_project(self, project: str, owner: str) -> str:
        """Make ``owner`` the owner of ``project`` unless it has one; the owner after."""
        statement = self._store.insert(OwnerRow).values(
            project=project, owner=owner, since=now()
        ).on_conflict_do_nothing(index_elements=[OwnerRow.project])
        with self._write() as session:
            session.execute(statement)
            return session.get_one(OwnerRow, project).owner

    def owner(self, project: str) -> str | None:
        with self._read() as session:
            row = session.get(OwnerRow, project)
            return row.owner if row is not None else None

    def owned_by(self, user: str) -> list[str]:
        query = select(OwnerRow.project).where(OwnerRow.owner == user).order_by(OwnerRow.project)
        with self._read() as session:
            return list(session.scalars(query))

    def visible_to(self, user: str) -> list[str]:
        """The projects ``user`` owns or that are shared with them, sorted: one
        plain SQL query, as every status and list request of the server asks it,
        kept until the database next changes."""
        return list(self._store.memo.get(("visible", user), lambda: self._visible_to(user)))

    def _visible_to(self, user: str) -> tuple[str, ...]:
        with self._store.guard(), self._store.engine.connect() as connection:
            return tuple(connection.execute(_VISIBLE_TO, {"user": user}).scalars())

    def share(self, project: str, user: str, access: str) -> ShareRecord:
        """Share ``project`` with ``user`` (replacing an earlier share's access)."""
        statement = self._store.insert(ShareRow).values(
            project=project, user=user, access=access, since=now()
        ).on_conflict_do_update(
            index_elements=[ShareRow.project, ShareRow.user], set_={"access": access}
        )
        with self._write() as session:
            session.execute(statement)
            return _share(session.get_one(ShareRow, (project, user)))

    def unshare(self, project: str, user: str) -> bool:
        statement = delete(ShareRow).where(and_(ShareRow.project == project,
                                                ShareRow.user == user))
        with self._write() as session:
            return _count(session.execute(statement)) == 1

    def share_of(self, project: str, user: str) -> str | None:
        """The access ``user`` was given to ``project``, or None."""
        with self._read() as session:
            row = session.get(ShareRow, (project, user))
            return row.access if row is not None else None

    def shares(self, project: str | None = None, user: str | None = None) -> list[ShareRecord]:
        query = select(ShareRow).order_by(ShareRow.project, ShareRow.user)
        if project is not None:
            query = query.where(ShareRow.project == project)
        if user is not None:
            query = query.where(ShareRow.user == user)
        with self._read() as session:
            return [_share(r) for r in session.scalars(query)]

    # -- sessions -----------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._store.guard(), Session(self._store.engine) as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One transaction: committed when the body ends, rolled back when it raises."""
        with (
            self._store.guard(),
            Session(self._store.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session


def _count(result: object) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def _user(row: UserRow) -> UserRecord:
    return UserRecord(
        name=row.name, admin=row.admin, created_at=aware(row.created_at),
        quota=Quota(row.max_vms, row.max_memory_mib, row.max_vcpus),
        has_password=row.password_hash is not None,
    )


def _token(row: TokenRow) -> TokenRecord:
    return TokenRecord(
        id=row.id, user=row.user, label=row.label, scope=row.scope,
        created_at=aware(row.created_at),
        last_used_at=aware(row.last_used_at) if row.last_used_at else None,
        revoked_at=aware(row.revoked_at) if row.revoked_at else None,
    )


def _share(row: ShareRow) -> ShareRecord:
    return ShareRecord(project=row.project, user=row.user, access=row.access,
                       since=aware(row.since))

"""build/up/upgrade for a user of the server: authorised, within quota, and owned,
on libvirt's test driver (one backend shared by every session, as one server's)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corral.errors import Forbidden, HiddenProject, QuotaExceeded
from corral.ops import projects, tokens, users
from corral.ops.access import Access, share_project
from corral.ops.identity import Identity
from corral.ops.session import Session
from corral.state.accounts import Accounts, Quota

ROOT = Identity.site_administrator()


@pytest.fixture
def as_user(session: Session) -> Iterator[Callable[[Identity], Session]]:
    """Sessions for other identities on the fixture session's backend and database."""
    opened: list[Session] = []

    def make(identity: Identity) -> Session:
        other = Session(session.site, identity=identity,
                        backend_factory=lambda name, _uri, _runs: session.backend(name))
        opened.append(other)
        return other

    yield make
    for other in opened:
        store = other.store
        if store is not None:
            store.close()


def _user(session: Session, name: str, quota: Quota | None = None) -> Identity:
    users.add_user(session, ROOT, name, quota=quota)
    issued = tokens.create_token(session, ROOT, name)
    return tokens.authenticate(session, issued.token, "192.0.2.5")


def test_a_user_builds_within_quota_and_owns_the_project(
    session: Session, as_user: Callable[[Identity], Session], lab_file: Callable[..., Path],
) -> None:
    path = lab_file()  # two hosts of 128 MiB, maxmem 256M
    small = as_user(_user(session, "alice", Quota(max_vms=1)))
    with pytest.raises(QuotaExceeded, match="VMs 2 of 1 allowed, 1 over"):
        projects.build(small, path)
    assert session.require_store().get_project("lab") is None
    assert projects.plan_source(session, path).actions  # nothing was built

    users.set_quota(session, ROOT, "alice", Quota(max_vms=2, max_memory_mib=512))
    assert projects.build(small, path).ok
    assert Accounts(session.require_store()).owner("lab") == "alice"
    logged = session.require_store().operations("lab")[0]
    assert (logged.action, logged.outcome) == ("build", "ok")
    assert logged.user.startswith("alice via ") and "@" in logged.user

    bob = _user(session, "bob")
    with pytest.raises(HiddenProject, match="project 'lab' not found"):
        projects.build(as_user(bob), path)
    share_project(session, ROOT, "lab", "bob", Access.READ)
    with pytest.raises(Forbidden, match="read-only"):
        projects.build(as_user(bob), path)
    share_project(session, ROOT, "lab", "bob", Access.WRITE)
    assert projects.build(as_user(bob), path).ok
    assert Accounts(session.require_store()).owner("lab") == "alice"  # the first stays


def test_projects_of_the_administrators_and_of_libvirt_alone_stay_theirs(
    session: Session, as_user: Callable[[Identity], Session], lab_file: Callable[..., Path],
) -> None:
    path = lab_file()
    assert projects.build(session, path).ok  # the site administrator: no owner
    assert Accounts(session.require_store()).owner("lab") is None
    alice = as_user(_user(session, "alice"))
    with pytest.raises(HiddenProject):
        projects.build(alice, path)
    session.require_store().forget_project("lab")  # the database lost it; libvirt has it
    with pytest.raises(HiddenProject) as caught:
        projects.build(alice, path)
    assert "exists on the service hosts" in caught.value.reason
    assert Accounts(session.require_store()).owner("lab") is None


def test_a_writer_grows_a_shared_project_within_its_owners_quota_not_their_own(
    session: Session, as_user: Callable[[Identity], Session], lab_file: Callable[..., Path],
) -> None:
    """A project counts against its owner: a writer without a quota of their own
    cannot take the owner past theirs."""
    path = lab_file()  # two hosts of 128 MiB, maxmem 256M
    alice = as_user(_user(session, "alice", Quota(max_vms=2, max_memory_mib=512)))
    assert projects.build(alice, path).ok
    bob = _user(session, "bob")  # no quota
    share_project(session, ROOT, "lab", "bob", Access.WRITE)
    bigger = lab_file(extra="host db {\n    superclass node\n}\n")
    with pytest.raises(QuotaExceeded, match="user 'alice' over their quota: VMs 3 of 2"):
        projects.upgrade(as_user(bob), bigger)
    assert "db" in [a.target for a in projects.plan_source(session, bigger).actions]  # not made
    users.set_quota(session, ROOT, "alice", Quota(max_vms=3, max_memory_mib=1024))
    assert projects.upgrade(as_user(bob), bigger).ok
    assert Accounts(session.require_store()).owner("lab") == "alice"

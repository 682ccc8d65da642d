"""Users, tokens, passwords, ownership, shares, quotas and the audit log, on a real
state database: a SQLite file in a temporary directory, then PostgreSQL."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from corral.config import Paths, SiteConfig, State
from corral.errors import (
    ConflictError,
    Forbidden,
    HiddenProject,
    InvalidRequest,
    NotAuthenticated,
    NotFoundError,
    QuotaExceeded,
)
from corral.model import Host, Project
from corral.ops import access, audit, quota, tokens, users
from corral.ops.access import Access
from corral.ops.credentials import DUMMY_HASH, TOKEN_PREFIX, token_digest
from corral.ops.identity import Identity, Scope
from corral.ops.session import Session
from corral.state.accounts import Accounts, Quota

ROOT = Identity.site_administrator()
# Cheap parameters for the tests that are not about the hash's strength.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def session(tmp_path: Path, state_url: str) -> Iterator[Session]:
    """A session on an empty state database: SQLite, then PostgreSQL."""
    site = SiteConfig(paths=Paths(templates=tmp_path / "t", runs=tmp_path / "r"),
                      state=State(url=state_url))
    with Session(site) as opened:
        yield opened


@pytest.fixture
def sqlite_session(tmp_path: Path) -> Iterator[Session]:
    """A session on the SQLite file tmp_path/db/state.db, for reading the file's bytes."""
    site = SiteConfig(paths=Paths(templates=tmp_path / "t", state=tmp_path / "db" / "state.db",
                                  runs=tmp_path / "r"))
    with Session(site) as opened:
        yield opened


def _project(name: str, *hosts: tuple[int, int]) -> Project:
    """A project of hosts given as (memory MiB, vCPUs)."""
    return Project(name=name, hosts={
        f"h{i}": Host(name=f"h{i}", memory_mib=mib, vcpus=cpus, service_host="local")
        for i, (mib, cpus) in enumerate(hosts)
    })


def _record(session: Session, project: Project, owner: str | None) -> None:
    store = session.require_store()
    store.record_project(project.name, f"/{project.name}.corral",
                         json.dumps(project.model_dump(mode="json")), "h")
    if owner is not None:
        Accounts(store).claim_project(project.name, owner)


def _login(session: Session, name: str) -> Identity:
    issued = tokens.create_token(session, ROOT, name, "test")
    return tokens.authenticate(session, issued.token, "10.0.0.9")


# -- users and tokens -------------------------------------------------------------


def test_a_new_user_gets_a_token_that_names_them(session: Session) -> None:
    added = users.add_user(session, ROOT, "alice", quota=Quota(max_vms=3))
    assert added.token.token.startswith(TOKEN_PREFIX) and len(added.token.token) > 40
    assert (added.user.name, added.user.admin, added.user.quota.max_vms) == ("alice", False, 3)
    assert added.token.record.label == "first token"
    me = tokens.authenticate(session, added.token.token, "192.0.2.7")
    assert me == Identity(name="alice", admin=False, scope=Scope.FULL, source="192.0.2.7")
    (listed,) = tokens.list_tokens(session, ROOT, "alice")
    assert listed.last_used_at is not None and not listed.revoked
    assert "token" not in tokens.token_json(listed)


def test_tokens_are_kept_only_as_their_sha256(sqlite_session: Session, tmp_path: Path) -> None:
    session = sqlite_session
    added = users.add_user(session, ROOT, "alice")
    second = tokens.create_token(session, ROOT, "alice", "ci")
    session.close()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "db").iterdir())
    assert b"alice" in stored and token_digest(second.token).encode() in stored
    for token in (added.token.token, second.token):
        assert token.encode() not in stored
        assert token.removeprefix(TOKEN_PREFIX).encode() not in stored


def test_bad_and_duplicate_users_are_refused(session: Session) -> None:
    users.add_user(session, ROOT, "alice")
    with pytest.raises(ConflictError, match="user 'alice' exists already"):
        users.add_user(session, ROOT, "alice", admin=True)
    for bad in ("Alice", "1x", "a b", "x" * 40, ""):
        with pytest.raises(InvalidRequest, match="invalid user name"):
            users.add_user(session, ROOT, bad)
    with pytest.raises(InvalidRequest, match="quota max VMs -1"):
        users.add_user(session, ROOT, "bob", quota=Quota(max_vms=-1))
    alice = _login(session, "alice")
    with pytest.raises(Forbidden, match=r"only an administrator.*'alice' is not one"):
        users.add_user(session, alice, "mallory", admin=True)
    assert [u.name for u in users.list_users(session, ROOT)] == ["alice"]
    assert [u.name for u in users.list_users(session, alice)] == ["alice"]


def test_revoked_unknown_and_malformed_tokens_authenticate_nobody(session: Session) -> None:
    added = users.add_user(session, ROOT, "alice")
    other = tokens.create_token(session, ROOT, "alice", "laptop")
    revoked = tokens.revoke_token(session, ROOT, added.token.record.id)
    assert revoked.revoked and revoked.revoked_at is not None
    again = tokens.revoke_token(session, ROOT, added.token.record.id)
    assert again.revoked_at == revoked.revoked_at  # the first revocation time stays
    for bad in (added.token.token, TOKEN_PREFIX + "x" * 43, "no-prefix", ""):
        with pytest.raises(NotAuthenticated, match="the token is not valid"):
            tokens.authenticate(session, bad, "192.0.2.7")
    assert tokens.authenticate(session, other.token, "192.0.2.7").name == "alice"
    refusals = [e for e in audit.entries(session, ROOT) if e.action == "authenticate"]
    assert [e.result for e in refusals] == ["refused"] * 4
    assert f"token {added.token.record.id} was revoked" in {e.detail for e in refusals}
    with pytest.raises(NotFoundError, match="token 999 not found"):
        tokens.revoke_token(session, ROOT, 999)


def test_users_manage_their_own_tokens_only(session: Session) -> None:
    users.add_user(session, ROOT, "alice")
    bobs = users.add_user(session, ROOT, "bob").token
    alice = _login(session, "alice")
    mine = tokens.create_token(session, alice, "alice", "mine")
    assert {t.user for t in tokens.list_tokens(session, alice)} == {"alice"}
    with pytest.raises(Forbidden):
        tokens.list_tokens(session, alice, "bob")
    with pytest.raises(Forbidden):
        tokens.create_token(session, alice, "bob")
    with pytest.raises(NotFoundError, match=f"token {bobs.record.id} not found"):
        tokens.revoke_token(session, alice, bobs.record.id)  # not told that it exists
    assert tokens.revoke_token(session, alice, mine.record.id).revoked
    with pytest.raises(NotFoundError, match="user 'nobody' does not exist"):
        tokens.create_token(session, ROOT, "nobody")


def test_a_metrics_only_token_reads_metrics_and_nothing_else(session: Session) -> None:
    users.add_user(session, ROOT, "prom", admin=True)
    issued = tokens.create_token(session, ROOT, "prom", "scraper", Scope.METRICS)
    assert issued.record.scope == "metrics"
    scraper = tokens.authenticate(session, issued.token, "10.0.0.3")
    assert scraper.scope is Scope.METRICS and scraper.admin
    with pytest.raises(Forbidden, match="metrics-only token"):
        access.authorize(session, scraper, "lab", Access.READ)
    with pytest.raises(Forbidden, match="metrics-only token"):
        users.list_users(session, scraper)
    with pytest.raises(Forbidden, match="metrics-only token"):
        tokens.create_token(session, scraper, "prom")


# -- passwords --------------------------------------------------------------------


def test_passwords_are_argon2id_and_checked(session: Session) -> None:
    users.add_user(session, ROOT, "alice", admin=True)
    users.set_password(session, ROOT, "alice", "correct horse")
    stored = Accounts(session.require_store()).password_hash("alice")
    assert stored is not None and stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    me = users.login(session, "alice", "correct horse", "192.0.2.1")
    assert (me.name, me.admin, me.source) == ("alice", True, "192.0.2.1")
    for name, password in (("alice", "wrong horse"), ("nobody", "correct horse")):
        with pytest.raises(NotAuthenticated, match="user name or password is wrong"):
            users.login(session, name, password, "192.0.2.1")
    logins = [(e.user, e.result, e.detail)
              for e in audit.entries(session, ROOT) if e.action == "login"]
    assert logins == [("nobody", "refused", "no such user or no password"),
                      ("alice", "refused", "wrong password"), ("alice", "ok", "")]


def test_the_dummy_hash_costs_what_a_real_one_does() -> None:
    assert DUMMY_HASH.startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(DUMMY_HASH)


def test_a_user_without_password_cannot_log_in_even_with_the_dummy(session: Session) -> None:
    users.add_user(session, ROOT, "alice")
    with pytest.raises(NotAuthenticated):
        users.login(session, "alice", "", "192.0.2.1", hasher=FAST)


def test_an_old_hash_is_replaced_at_the_next_login(session: Session) -> None:
    users.add_user(session, ROOT, "alice")
    users.set_password(session, ROOT, "alice", "old parameters", hasher=FAST)
    assert "m=8," in (Accounts(session.require_store()).password_hash("alice") or "")
    users.login(session, "alice", "old parameters", "local")
    renewed = Accounts(session.require_store()).password_hash("alice") or ""
    assert "m=65536," in renewed


def test_passwords_are_set_by_their_user_or_an_administrator(session: Session) -> None:
    users.add_user(session, ROOT, "alice")
    users.add_user(session, ROOT, "bob")
    alice = _login(session, "alice")
    users.set_password(session, alice, "alice", "alices own", hasher=FAST)
    with pytest.raises(Forbidden):
        users.set_password(session, alice, "bob", "not hers", hasher=FAST)
    with pytest.raises(InvalidRequest, match="at least 8 characters"):
        users.set_password(session, alice, "alice", "short", hasher=FAST)
    with pytest.raises(NotFoundError, match="user 'nobody' does not exist"):
        users.set_password(session, ROOT, "nobody", "whatever long", hasher=FAST)


# -- removing users ---------------------------------------------------------------


def test_the_last_administrator_stays(session: Session) -> None:
    users.add_user(session, ROOT, "root1", admin=True)
    users.add_user(session, ROOT, "root2", admin=True)
    users.remove_user(session, ROOT, "root1")
    with pytest.raises(ConflictError, match="user 'root2' is the last administrator"):
        users.remove_user(session, ROOT, "root2")
    with pytest.raises(NotFoundError, match="user 'root1' does not exist"):
        users.remove_user(session, ROOT, "root1")


def test_removing_a_user_takes_tokens_and_shares_and_frees_their_projects(
    session: Session,
) -> None:
    alice_token = users.add_user(session, ROOT, "alice").token.token
    users.add_user(session, ROOT, "bob")
    _record(session, _project("lab", (128, 1)), "alice")
    _record(session, _project("web", (128, 1)), "bob")
    access.share_project(session, ROOT, "web", "alice", Access.WRITE)
    preview = users.removal_preview(session, ROOT, "alice")
    removed = users.remove_user(session, ROOT, "alice")
    assert removed == preview
    assert (removed.tokens, removed.shares, removed.projects) == (1, 1, ("lab",))
    assert "projects owned (now the administrators' alone, VMs untouched): lab" in (
        users.describe_removal(removed))
    with pytest.raises(NotAuthenticated):
        tokens.authenticate(session, alice_token, "local")
    accounts = Accounts(session.require_store())
    assert accounts.owner("lab") is None and accounts.shares(project="web") == []
    assert session.require_store().get_project("lab") is not None  # the project stays
    bob = _login(session, "bob")
    with pytest.raises(HiddenProject):
        access.authorize(session, bob, "lab", Access.READ)


# -- ownership and shares ---------------------------------------------------------


def test_owners_sharers_and_strangers(session: Session) -> None:
    for name in ("alice", "bob", "carol", "dave"):
        users.add_user(session, ROOT, name)
    alice, bob, carol, dave = (_login(session, n) for n in ("alice", "bob", "carol", "dave"))
    _record(session, _project("lab", (128, 1)), "alice")
    access.share_project(session, alice, "lab", "bob", Access.READ)
    access.share_project(session, ROOT, "lab", "dave", Access.WRITE)

    for kind in Access:
        access.authorize(session, alice, "lab", kind)
        access.authorize(session, dave, "lab", kind)
        access.authorize(session, ROOT, "lab", kind)
    access.authorize(session, bob, "lab", Access.READ)
    with pytest.raises(Forbidden, match="shared with user 'bob' read-only"):
        access.authorize(session, bob, "lab", Access.WRITE)
    for action in ("status", "show", "plan", "vm.log"):
        access.authorize_action(session, bob, "lab", action)
    for action in ("up", "remove", "vm.reboot", "vm.console"):
        with pytest.raises(Forbidden):
            access.authorize_action(session, bob, "lab", action)
    with pytest.raises(InvalidRequest, match="unknown project operation 'fly'"):
        access.authorize_action(session, bob, "lab", "fly")

    with pytest.raises(HiddenProject) as hidden:
        access.authorize(session, carol, "lab", Access.READ)
    with pytest.raises(HiddenProject) as missing:
        access.authorize(session, carol, "nosuch", Access.READ)
    assert hidden.value.message == "project 'lab' not found"
    assert missing.value.message == "project 'nosuch' not found"
    assert hidden.value.exit_code == missing.value.exit_code == 3
    assert hidden.value.http_status == 404
    with pytest.raises(HiddenProject):
        access.authorize(session, carol, "lab", Access.WRITE)
    access.authorize(session, carol, "brandnew", Access.WRITE, creating=True)  # a free name
    with pytest.raises(HiddenProject):  # anything but creating it answers as hidden
        access.authorize(session, carol, "brandnew", Access.WRITE)

    assert access.visible_projects(session, alice) == ["lab"]
    assert access.visible_projects(session, bob) == ["lab"]
    assert access.visible_projects(session, carol) == []
    assert access.visible_projects(session, ROOT) == ["lab"]


def test_sharing_is_for_owners_and_administrators(session: Session) -> None:
    for name in ("alice", "bob", "carol"):
        users.add_user(session, ROOT, name)
    alice, bob, carol = (_login(session, n) for n in ("alice", "bob", "carol"))
    _record(session, _project("lab", (128, 1)), "alice")
    _record(session, _project("admins", (128, 1)), None)
    access.share_project(session, alice, "lab", "bob", Access.WRITE)
    with pytest.raises(Forbidden, match="only the owner of project 'lab'"):
        access.share_project(session, bob, "lab", "carol", Access.READ)
    with pytest.raises(HiddenProject):
        access.share_project(session, carol, "lab", "carol", Access.WRITE)
    with pytest.raises(HiddenProject):
        access.project_shares(session, alice, "admins")
    with pytest.raises(NotFoundError, match="user 'zed' does not exist"):
        access.share_project(session, alice, "lab", "zed", Access.READ)
    with pytest.raises(InvalidRequest, match="user 'alice' owns project 'lab' already"):
        access.share_project(session, ROOT, "lab", "alice", Access.READ)
    with pytest.raises(NotFoundError, match="project 'gone' not found"):
        access.share_project(session, ROOT, "gone", "bob", Access.READ)
    access.share_project(session, alice, "lab", "bob", Access.READ)  # replaces the write share
    shares = access.project_shares(session, alice, "lab")
    assert shares.owner == "alice"
    assert [(s.user, s.access) for s in shares.shares] == [("bob", "read")]
    assert shares.as_json()["shares"][0]["access"] == "read"  # type: ignore[index]
    access.unshare_project(session, alice, "lab", "bob")
    with pytest.raises(NotFoundError, match="project 'lab' is not shared with user 'bob'"):
        access.unshare_project(session, alice, "lab", "bob")
    with pytest.raises(HiddenProject):
        access.authorize(session, bob, "lab", Access.READ)


def test_forgetting_a_project_frees_its_name(session: Session) -> None:
    users.add_user(session, ROOT, "alice")
    users.add_user(session, ROOT, "bob")
    _record(session, _project("lab", (128, 1)), "alice")
    access.share_project(session, ROOT, "lab", "bob", Access.READ)
    session.require_store().forget_project("lab")
    accounts = Accounts(session.require_store())
    assert accounts.owner("lab") is None and accounts.shares(project="lab") == []
    assert accounts.claim_project("lab", "bob") == "bob"
    assert accounts.claim_project("lab", "alice") == "bob"  # the first claim stays


# -- quotas -----------------------------------------------------------------------


def test_a_project_over_quota_is_refused_with_the_figures(session: Session) -> None:
    users.add_user(session, ROOT, "alice",
                   quota=Quota(max_vms=3, max_memory_mib=1024, max_vcpus=4))
    _record(session, _project("one", (512, 2)), "alice")
    _record(session, _project("theirs", (4096, 8)), None)  # not alice's: not counted
    fits = quota.check_quota(session, "alice", _project("two", (256, 1), (256, 1)))
    assert fits == quota.Footprint(vms=3, memory_mib=1024, vcpus=4)
    with pytest.raises(QuotaExceeded) as caught:
        quota.check_quota(session, "alice", _project("two", (256, 1), (512, 2), (128, 1)))
    assert caught.value.message == (
        "project 'two' would bring user 'alice' over their quota: "
        "VMs 4 of 3 allowed, 1 over; memory 1408 MiB of 1024 MiB allowed, 384 MiB over; "
        "vCPUs 6 of 4 allowed, 2 over"
    )
    assert caught.value.http_status == 403


def test_a_changed_project_counts_once_and_maxmem_counts(session: Session) -> None:
    users.add_user(session, ROOT, "alice", quota=Quota(max_memory_mib=1024))
    _record(session, _project("lab", (1024, 1)), "alice")
    quota.check_quota(session, "alice", _project("lab", (1000, 1)))  # the upgrade replaces it
    grown = Project(name="lab", hosts={"h0": Host(
        name="h0", memory_mib=512, maxmem_mib=2048, vcpus=1, service_host="local")})
    with pytest.raises(QuotaExceeded, match="memory 2048 MiB of 1024 MiB allowed, 1024 MiB over"):
        quota.check_quota(session, "alice", grown)
    users.set_quota(session, ROOT, "alice", Quota())
    quota.check_quota(session, "alice", grown)
    with pytest.raises(NotFoundError, match="user 'nobody' does not exist"):
        quota.check_quota(session, "nobody", grown)


# -- audit ------------------------------------------------------------------------


def test_every_user_operation_is_audited_with_its_result(session: Session) -> None:
    users.add_user(session, ROOT, "alice")
    with pytest.raises(ConflictError):
        users.add_user(session, ROOT, "alice")
    alice = _login(session, "alice")
    with pytest.raises(Forbidden):
        users.add_user(session, alice, "eve")
    found = audit.entries(session, ROOT, user="alice")
    assert [(e.action, e.target, e.result, e.source) for e in found] == [
        ("user.add", "eve", "refused", "10.0.0.9")]
    assert "only an administrator" in found[0].detail
    mine = [(e.action, e.result) for e in audit.entries(session, ROOT, user=ROOT.name)]
    assert mine == [("token.create", "ok"), ("user.add", "error"), ("user.add", "ok")]
    assert audit.entries(session, ROOT, user=ROOT.name)[1].detail == "user 'alice' exists already"
    assert len(audit.entries(session, ROOT, limit=2)) == 2


def test_audit_since_relative_and_absolute(session: Session) -> None:
    users.add_user(session, ROOT, "alice")
    now = datetime.now(UTC)
    assert len(audit.entries(session, ROOT, since="1h")) == 1
    assert len(audit.entries(session, ROOT, since="1h", now=now + timedelta(hours=2))) == 0
    assert len(audit.entries(session, ROOT, since=(now - timedelta(minutes=5)).isoformat())) == 1
    later = (now + timedelta(minutes=5)).replace(tzinfo=None).isoformat()
    assert audit.entries(session, ROOT, since=later) == []
    assert audit.parse_since("2d", now) == now - timedelta(days=2)
    assert audit.parse_since("30m", now) == now - timedelta(minutes=30)
    for bad in ("yesterday", "5y", "-1h"):
        with pytest.raises(InvalidRequest, match=f"since '{bad}'"):
            audit.parse_since(bad, now)
    with pytest.raises(InvalidRequest, match="limit 0"):
        audit.entries(session, ROOT, limit=0)
    alice = _login(session, "alice")
    with pytest.raises(Forbidden, match="read the audit log"):
        audit.entries(session, alice)


def test_audit_entries_go_to_syslog_when_there_is_one(session: Session, tmp_path: Path) -> None:
    address = str(tmp_path / "log")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(5)
        entry = audit.record(session, ROOT, "user.add", "alice", "ok", "first",
                             syslog_address=address)
        line = listener.recv(4096).decode()
    assert line.startswith("<" + str(8 * 10 + 6) + ">corral: audit ")  # authpriv.info
    assert f"user={ROOT.name} source=local action=user.add target=alice result=ok" in line
    assert entry.detail == "first"
    missing = audit.record(session, ROOT, "user.add", "bob", "ok",
                           syslog_address=str(tmp_path / "none"))
    assert missing.target == "bob"  # no syslog: recorded all the same
    assert not audit.to_syslog(missing, str(tmp_path / "none"))

"""The lookups every request of the server makes: a token (its last use kept to
the minute, so checking it reads the database and writes at most once a
minute per token) and the projects a user may see."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, update

from corral.state import StateStore
from corral.state.accounts import LAST_USE_PRECISION, Accounts, Quota
from corral.state.db import TokenRow
from corral.state.store import now


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[Accounts]:
    with StateStore(tmp_path / "state.db") as store:
        found = Accounts(store)
        found.add_user("alice", False, Quota())
        found.add_token("alice", "ci", "a" * 64, "full")
        yield found


def _statements(accounts: Accounts, verb: str) -> list[str]:
    """The statements beginning with ``verb`` the store runs from now on."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if statement.lstrip().upper().startswith(verb):
            seen.append(statement)

    event.listen(accounts._store.engine, "before_cursor_execute", note)
    return seen


def _updates(accounts: Accounts) -> list[str]:
    return _statements(accounts, "UPDATE")


def _selects(accounts: Accounts) -> list[str]:
    return _statements(accounts, "SELECT")


def _last_used_back(accounts: Accounts, by: timedelta) -> None:
    with accounts._store.engine.begin() as conn:
        conn.execute(update(TokenRow).values(last_used_at=now() - by))


def test_the_first_use_is_recorded_and_the_next_within_a_minute_writes_nothing(
    accounts: Accounts,
) -> None:
    updates = _updates(accounts)
    used = accounts.use_token("a" * 64)
    assert used is not None
    first = used.token
    assert (first.user, first.last_used_at is not None, used.admin) == ("alice", True, False)
    assert len(updates) == 1
    for _ in range(5):
        again = accounts.use_token("a" * 64)
        assert again is not None and again.token.last_used_at == first.last_used_at
    assert len(updates) == 1


def test_a_use_after_the_precision_is_recorded_again(accounts: Accounts) -> None:
    accounts.use_token("a" * 64)
    _last_used_back(accounts, LAST_USE_PRECISION + timedelta(seconds=1))
    stale = accounts.tokens("alice")[0].last_used_at
    used = accounts.use_token("a" * 64)
    assert used is not None and stale is not None and used.token.last_used_at is not None
    assert used.token.last_used_at > stale + LAST_USE_PRECISION
    assert accounts.tokens("alice")[0].last_used_at == used.token.last_used_at


def test_a_revoked_or_unknown_token_is_never_marked_used(accounts: Accounts) -> None:
    (token,) = accounts.tokens("alice")
    accounts.revoke_token(token.id)
    updates = _updates(accounts)
    used = accounts.use_token("a" * 64)
    assert used is not None
    assert used.token.revoked and used.token.last_used_at is None
    assert accounts.use_token("b" * 64) is None
    assert updates == []


def test_a_token_whose_user_is_gone_says_so(accounts: Accounts) -> None:
    accounts.add_token("ghost", "left over", "c" * 64, "full")  # no such user
    used = accounts.use_token("c" * 64)
    assert used is not None and used.admin is None


def test_a_user_sees_the_projects_they_own_and_those_shared_with_them(
    accounts: Accounts,
) -> None:
    accounts.add_user("bob", False, Quota())
    for project, owner in (("web", "alice"), ("db", "bob"), ("ci", "bob"), ("zoo", "alice")):
        accounts.claim_project(project, owner)
    accounts.share("db", "alice", "read")
    accounts.share("zoo", "bob", "write")
    assert accounts.visible_to("alice") == ["db", "web", "zoo"]
    assert accounts.visible_to("bob") == ["ci", "db", "zoo"]
    assert accounts.visible_to("carol") == []


def test_answers_are_kept_until_the_database_changes(accounts: Accounts) -> None:
    accounts.claim_project("web", "alice")
    accounts.use_token("a" * 64)  # its first use is written: a change
    selects = _selects(accounts)
    for _ in range(3):
        assert accounts.visible_to("alice") == ["web"]
        used = accounts.use_token("a" * 64)
        assert used is not None and not used.token.revoked
    assert len(selects) == 2  # asked once each, then kept
    (token,) = accounts.tokens("alice")
    accounts.revoke_token(token.id)
    accounts.share("db", "alice", "read")
    used = accounts.use_token("a" * 64)
    assert used is not None and used.token.revoked
    assert accounts.visible_to("alice") == ["db", "web"]


def test_a_change_made_by_another_process_is_seen_at_once(accounts: Accounts) -> None:
    assert accounts.visible_to("alice") == []
    assert accounts.use_token("a" * 64) is not None
    path = accounts._store.path
    assert path is not None
    code = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute(\"insert into project_owners(project, owner, since) "
            "values ('web', 'alice', '2026-01-01')\"); "
            "c.execute(\"update api_tokens set revoked_at = '2026-01-01'\"); c.commit()")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert accounts.visible_to("alice") == ["web"]
    used = accounts.use_token("a" * 64)
    assert used is not None and used.token.revoked


def test_a_database_without_a_change_counter_asks_every_time() -> None:
    with StateStore("sqlite://") as store:  # in memory: nothing to count changes with
        found = Accounts(store)
        found.add_user("alice", False, Quota())
        found.claim_project("web", "alice")
        selects = _selects(found)
        for _ in range(3):
            assert found.visible_to("alice") == ["web"]
        assert len(selects) == 3

"""``GET /status`` answers from one reading of the site shared by every caller,
each answer cut to what its caller may see, saying how old it is, and read
again after a change made through the server."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_support import Cast

from corral.server.fresh import FreshReadings
from corral.server.state import server_state


def _status(client: TestClient, cast: Cast, role: str, query: str = "") -> dict[str, Any]:
    answer = client.get(f"/api/v1/status{query}", headers=cast.headers(role))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _long_lived(app: FastAPI) -> list[int]:
    """Make the shared reading live a minute (so the test's requests surely share
    it); the list counts the surveys taken."""
    server = server_state(app)
    surveys: list[int] = []

    def counted() -> Any:
        surveys.append(1)
        return server._read_status()

    server.status = FreshReadings(counted, max_age_s=60.0)
    return surveys


def test_every_caller_is_given_the_one_reading_cut_to_their_projects(
    app: FastAPI, client: TestClient, cast: Cast, lab: dict[str, Any]
) -> None:
    surveys = _long_lived(app)
    seen = {role: _status(client, cast, role) for role in ("owner", "reader", "other", "admin")}
    assert len(surveys) == 1
    assert len({answer["read_at"] for answer in seen.values()}) == 1
    for role in ("owner", "reader", "admin"):
        assert [(r["project"], r["host"]) for r in seen[role]["rows"]] == [
            ("lab", "app"), ("lab", "web")], role
        assert [h["vms"] for h in seen[role]["service_hosts"]] == [2]
    assert seen["other"]["rows"] == []
    assert [h["vms"] for h in seen["other"]["service_hosts"]] == [0]
    one = _status(client, cast, "reader", "?project=lab")
    assert (one["read_at"], len(one["rows"])) == (seen["owner"]["read_at"], 2)
    hidden = client.get("/api/v1/status?project=lab", headers=cast.headers("other"))
    assert hidden.status_code == 404
    assert len(surveys) == 1


def test_the_answer_says_how_old_its_reading_is(
    app: FastAPI, client: TestClient, cast: Cast, lab: dict[str, Any]
) -> None:
    _long_lived(app)
    first = _status(client, cast, "owner")
    later = _status(client, cast, "owner")
    read_at = datetime.fromisoformat(first["read_at"])
    assert read_at.tzinfo is not None
    assert later["read_at"] == first["read_at"]
    assert 0 <= first["age_s"] <= later["age_s"] < 60


def test_a_change_made_through_the_server_shows_in_the_next_answer(
    app: FastAPI, client: TestClient, cast: Cast, lab: dict[str, Any]
) -> None:
    surveys = _long_lived(app)
    before = {r["host"]: r["state"] for r in _status(client, cast, "owner")["rows"]}
    assert before == {"app": "running", "web": "running"}
    destroyed = client.post("/api/v1/vms/lab.web/destroy", headers=cast.headers("writer"))
    assert destroyed.status_code == 200, destroyed.text
    after = {r["host"]: r["state"] for r in _status(client, cast, "owner")["rows"]}
    assert after == {"app": "running", "web": "shutoff"}
    assert len(surveys) == 2


def test_a_caller_asking_for_their_own_timeout_is_surveyed_for_themselves(
    app: FastAPI, client: TestClient, cast: Cast, lab: dict[str, Any]
) -> None:
    surveys = _long_lived(app)
    shared = _status(client, cast, "owner")
    own = _status(client, cast, "owner", "?timeout_s=5")
    assert len(surveys) == 1
    assert own["read_at"] > shared["read_at"]
    assert [r["host"] for r in own["rows"]] == ["app", "web"]

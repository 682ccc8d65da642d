"""``GET /status`` answers from one reading of the site shared by every caller,
each answer cut to what its caller may see, saying how old it is, and read
again after a change made through the server."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_support import Cast

from corral.ops.access import Access, share_project
from corral.ops.identity import Identity
from corral.ops.session import Session
from corral.ops.status import DEFAULT_TIMEOUT_S
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
        return server.reader.read()

    # The started one (primed, kept young) ends first: a reading of it left going
    # would hold test:///default, and this test's domains, into the next test.
    server.status.stop()
    assert server.status.settle(10.0)
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


def test_a_started_server_reads_the_status_before_anyone_asks(
    app: FastAPI, client: TestClient
) -> None:
    """The lifespan primes the reading: the first request finds it young."""
    status = server_state(app).status
    deadline = time.monotonic() + 20
    while (reading := status.young()) is None:  # young() never begins a reading itself
        assert time.monotonic() < deadline, "no reading since the server started"
        time.sleep(0.05)
    assert [h.name for h in reading.value.service_hosts] == ["local"]


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


def _without_age(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "age_s"}


def test_the_express_lane_answers_as_the_route_does_without_opening_a_session(
    app: FastAPI, client: TestClient, cast: Cast, lab: dict[str, Any]
) -> None:
    _long_lived(app)
    server = server_state(app)
    _status(client, cast, "owner")  # the reading is taken
    opened: list[str] = []
    real = server.session

    def counted(identity: Identity, reporter: Any = None) -> Session:
        opened.append(identity.name)
        return real(identity, reporter)

    server.session = counted  # type: ignore[method-assign]
    for role in ("owner", "reader", "other", "admin"):
        express = _status(client, cast, role)
        assert opened == [], role  # no session: answered before FastAPI's routing
        # Any query goes through the route; this one asks what the plain request does.
        routed = _status(client, cast, role, f"?timeout_s={DEFAULT_TIMEOUT_S}")
        assert opened, role
        opened.clear()
        assert _without_age(express) == _without_age(routed), role
    metrics = client.get("/metrics", headers=cast.headers("admin")).text
    assert 'corral_http_requests_total{method="GET",route="/api/v1/status",status="200"}' \
        in metrics


def test_the_express_lane_leaves_refusals_to_the_route(
    app: FastAPI, client: TestClient, cast: Cast, lab: dict[str, Any]
) -> None:
    _long_lived(app)
    _status(client, cast, "owner")  # a young reading: the express lane would answer
    owner = cast.headers("owner")
    issued = client.post("/api/v1/tokens", headers=owner, json={"user": "alice",
                                                                 "name": "laptop"})
    laptop = {"Authorization": f"Bearer {issued.json()['token']}"}
    assert client.get("/api/v1/status", headers=laptop).status_code == 200
    assert client.delete(f"/api/v1/tokens/{issued.json()['id']}",
                         headers=owner).status_code == 200
    refused = client.get("/api/v1/status", headers=laptop)
    assert refused.status_code == 401
    assert refused.json()["error"] == "the token is not valid (unknown or revoked)"
    assert client.get("/api/v1/status", headers=cast.headers("metrics")).status_code == 403
    assert client.get("/api/v1/status",
                      headers={"Authorization": "Basic x"}).status_code == 401
    audit = client.get("/api/v1/audit", headers=cast.headers("admin"),
                       params={"user": "alice"}).json()
    assert any(e["action"] == "authenticate" and e["result"] == "refused" for e in audit)


def test_a_share_made_elsewhere_shows_in_the_next_express_answer(
    app: FastAPI, client: TestClient, cast: Cast, lab: dict[str, Any],
    admin_session: Session,
) -> None:
    """The express lane keeps each cut of a reading rendered and the projects each
    user sees remembered; a change to the database by another process (the
    CLI's ``corral project share``) is seen at once, with the reading kept."""
    _long_lived(app)
    first = _status(client, cast, "other")
    assert first["rows"] == []
    share_project(admin_session, admin_session.identity, "lab", "bob", Access.READ)
    time.sleep(0.01)
    shared = _status(client, cast, "other")
    assert shared["read_at"] == first["read_at"]
    assert [(r["project"], r["host"]) for r in shared["rows"]] == [("lab", "app"), ("lab", "web")]
    assert [h["vms"] for h in shared["service_hosts"]] == [2]
    assert shared["age_s"] > first["age_s"]
    assert _status(client, cast, "owner")["rows"] == shared["rows"]

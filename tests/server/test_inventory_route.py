"""``GET /projects/{p}/inventory``: what the Ansible inventory is made of, for
whoever may read the project, decoded by the client into the very inventory
the operations return on the server's machine."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from server_support import Cast

from corral.client import decode
from corral.ops.inventory import inventory
from corral.ops.session import Session


def test_a_read_only_sharer_reads_the_inventory(client: TestClient, cast: Cast,
                                                lab: dict[str, Any],
                                                admin_session: Session) -> None:
    answer = client.get("/api/v1/projects/lab/inventory", headers=cast.headers("reader"))
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert [(h["target"]["host"], h["superclasses"], h["switches"]) for h in data["hosts"]] == [
        ("app", ["node"], ["front"]), ("web", ["node"], ["front"])]
    assert data["switches"] == ["front"]
    assert data["hosts"][0]["target"]["address"] == "10.9.1.20"
    assert decode.inventory(data) == inventory(admin_session, "lab")


def test_the_login_user_is_checked_and_chosen(client: TestClient, cast: Cast,
                                               lab: dict[str, Any]) -> None:
    reader = cast.headers("reader")
    chosen = client.get("/api/v1/projects/lab/inventory", params={"user": "ops"}, headers=reader)
    assert {h["target"]["user"] for h in chosen.json()["hosts"]} == {"ops"}
    bad = client.get("/api/v1/projects/lab/inventory", params={"user": "A B"}, headers=reader)
    assert bad.status_code == 400
    assert "invalid user name 'A B'" in bad.json()["error"]

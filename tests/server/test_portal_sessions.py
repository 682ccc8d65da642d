"""The portal's logins: the session cookie, CSRF, the failed-login limit, and
sessions ending with logout, user removal and a new password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from portal_support import (
    NAMES,
    PASSWORD,
    browser,
    concrete,
    give_passwords,
    log_in,
    login_post,
    portal_routes,
)
from server_support import Cast

from corral.config import SiteConfig
from corral.ops.session import Session
from corral.ops.users import remove_user, set_password
from corral.server.app import create_app
from corral.state.audit import AuditLog


@pytest.fixture
def portal(admin_session: Session, cast: Cast) -> Cast:
    give_passwords(admin_session)
    return cast


def _audit(admin: Session, action: str, result: str) -> list[Any]:
    return [e for e in AuditLog(admin.require_store()).entries(limit=1000)
            if e.action == action and e.result == result]


def test_every_portal_page_sends_an_anonymous_visitor_to_log_in(app: FastAPI) -> None:
    routes = portal_routes(app)
    assert ("GET", "/") in routes and ("POST", "/vms/{target}/actions/{action}") in routes
    anonymous = browser(app)
    asked = 0
    for method, path in routes:
        if path == "/login":
            continue
        answer = anonymous.request(method, concrete(path) + ("?x=1" if method == "GET" else ""))
        assert answer.status_code == 303, (method, path, answer.status_code)
        location = answer.headers["location"]
        assert location.startswith("/login?next=/"), (path, location)
        asked += 1
    assert asked >= 12
    again = anonymous.get("/vms/lab.web?a=b").headers["location"]
    assert again == "/login?next=/vms/lab.web%3Fa%3Db"


@pytest.mark.parametrize("given, goes", [
    ("/vms/lab.web", "/vms/lab.web"), ("//evil.example/x", "/"), ("https://evil.example", "/"),
    ("/\\evil.example", "/"), ("javascript:alert(1)", "/"), ("/login", "/"), ("", "/"),
])
def test_logging_in_goes_to_a_local_next_only(app: FastAPI, portal: Cast, given: str,
                                              goes: str) -> None:
    answer = login_post(browser(app), {"user": "alice", "password": PASSWORD,
                                               "next": given})
    assert answer.status_code == 303
    assert answer.headers["location"] == goes


def test_the_cookie_is_httponly_and_strict_and_secure_over_tls(app: FastAPI,
                                                               portal: Cast) -> None:
    plain = login_post(browser(app), {"user": "alice", "password": PASSWORD})
    cookie = plain.headers["set-cookie"].lower()
    assert "corral_session=crs_" in cookie and "httponly" in cookie
    assert "samesite=strict" in cookie and "secure" not in cookie
    tls = login_post(browser(app, "https://testserver"), {"user": "alice", "password": PASSWORD})
    assert "; secure" in tls.headers["set-cookie"].lower()


def test_a_wrong_password_is_refused_and_audited(app: FastAPI, portal: Cast,
                                                 admin_session: Session) -> None:
    client = browser(app)
    for user in ("alice", "nobody"):
        answer = login_post(client, {"user": user, "password": "wrong password"})
        assert answer.status_code == 401
        assert "user name or password is wrong" in answer.text
        assert "corral_session" not in answer.headers.get("set-cookie", "")
    assert client.get("/").status_code == 303
    refused = _audit(admin_session, "login", "refused")
    assert {e.target for e in refused} == {"alice", "nobody"}


def test_the_session_cookie_works_for_the_api_too(app: FastAPI, portal: Cast) -> None:
    client = browser(app)
    log_in(client, "owner")
    me = client.get("/api/v1/whoami")
    assert me.status_code == 200 and me.json()["name"] == "alice"


def test_logout_ends_the_session(app: FastAPI, portal: Cast) -> None:
    client = browser(app)
    csrf = log_in(client, "owner")
    cookie = client.cookies["corral_session"]
    out = client.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert 'corral_session=""' in out.headers["set-cookie"]
    replay = browser(app)
    replay.cookies.set("corral_session", cookie)
    assert replay.get("/").status_code == 303
    assert replay.get("/api/v1/whoami").status_code == 401


def test_every_changing_portal_route_needs_the_csrf_token(app: FastAPI, portal: Cast,
                                                          admin_session: Session) -> None:
    client = browser(app)
    good = log_in(client, "admin")
    changing = [(m, p) for m, p in portal_routes(app) if m == "POST" and p != "/login"]
    assert len(changing) >= 7
    for method, path in changing:
        for data, headers in (({}, {}), ({"csrf_token": "0" * 64}, {}),
                              ({}, {"X-CSRF-Token": good[::-1]})):
            answer = client.request(method, concrete(path), data=data, headers=headers)
            assert answer.status_code == 403, (path, data, headers, answer.status_code)
            assert "CSRF token is missing or wrong" in answer.text
    assert len(_audit(admin_session, "csrf", "refused")) == 3 * len(changing)
    # Still logged in: the refusals changed nothing.
    assert client.get("/").status_code == 200


def test_a_cookie_authenticated_api_change_needs_the_csrf_token(
    app: FastAPI, portal: Cast, admin_session: Session
) -> None:
    client = browser(app)
    csrf = log_in(client, "owner")
    body = {"user": "alice", "name": "from the portal"}
    assert client.post("/api/v1/tokens", json=body).status_code == 403
    assert client.post("/api/v1/tokens", json=body,
                       headers={"X-CSRF-Token": "bad"}).status_code == 403
    made = client.post("/api/v1/tokens", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201
    assert _audit(admin_session, "csrf", "refused")[0].target == "/api/v1/tokens"
    # A bearer token needs no CSRF token: a browser never sends one on its own.
    bearer = browser(app).post("/api/v1/tokens", json=body, headers=portal.headers("owner"))
    assert bearer.status_code == 201


def test_failed_logins_are_limited_per_user_and_per_address(
    app: FastAPI, portal: Cast, admin_session: Session, site: SiteConfig
) -> None:
    client = browser(app)
    for _ in range(5):
        assert login_post(client, {"user": "alice", "password": "nope nope"}
                           ).status_code == 401
    limited = login_post(client, {"user": "alice", "password": PASSWORD})
    assert limited.status_code == 429, "the right password does not lift the limit"
    assert 800 < int(limited.headers["retry-after"]) <= 900
    assert "Too many failed logins" in limited.text
    assert "corral_session" not in limited.headers.get("set-cookie", "")
    entry = _audit(admin_session, "login", "refused")[0]
    assert entry.target == "alice" and entry.detail.startswith("too many failed logins")
    # Another server on the same database counts the same failures.
    other = create_app(site)
    assert login_post(browser(other), {"user": "alice", "password": PASSWORD}
                               ).status_code == 429
    # The address is limited too, whatever name it tries next.
    assert login_post(client, {"user": "bob", "password": PASSWORD}).status_code == 429


def test_a_successful_login_clears_its_users_failures(app: FastAPI, portal: Cast,
                                                      site: SiteConfig) -> None:
    app.state.corral.login_limit = type(app.state.corral.login_limit)(failures=3)
    client = browser(app)
    for _ in range(2):
        login_post(client, {"user": "alice", "password": "nope nope"})
    log_in(client, "owner")
    again = browser(app)  # from the same address, with no session
    for _ in range(2):
        assert login_post(again, {"user": "alice", "password": "nope nope"}
                          ).status_code == 401


@pytest.mark.parametrize("change", ["password", "removal"])
def test_a_session_ends_when_its_user_changes_password_or_goes(
    app: FastAPI, portal: Cast, admin_session: Session, change: str
) -> None:
    client = browser(app)
    log_in(client, "writer")
    assert client.get("/").status_code == 200
    if change == "password":
        set_password(admin_session, admin_session.identity, "dave", "another password")
    else:
        remove_user(admin_session, admin_session.identity, "dave")
    assert client.get("/").status_code == 303
    assert client.get("/api/v1/whoami").status_code == 401


def test_the_database_keeps_only_the_hash_of_a_session(app: FastAPI, portal: Cast,
                                                       site: SiteConfig) -> None:
    client = browser(app)
    log_in(client, "owner")
    token = client.cookies["corral_session"]
    location = site.state_location()
    assert isinstance(location, Path)
    assert token.encode() not in location.read_bytes()
    assert NAMES["owner"] == "alice"


def test_a_login_without_the_forms_token_is_refused_unchecked(
    app: FastAPI, portal: Cast, admin_session: Session
) -> None:
    """Login CSRF: a form posted from another site arrives without the login cookie
    (SameSite=Strict) or with a token that is not its, and is refused before the
    password is looked at; the page then offers a form that works."""
    forged = browser(app)
    for data in ({"user": "alice", "password": PASSWORD},
                 {"user": "alice", "password": PASSWORD, "csrf_token": "A" * 32}):
        answer = forged.post("/login", data=data)
        assert answer.status_code == 403, answer.text
        assert "did not come from this portal" in answer.text
        assert "corral_session" not in answer.headers.get("set-cookie", "")
    refused = _audit(admin_session, "csrf", "refused")
    assert [(e.user, e.target) for e in refused] == [("alice", "/login")] * 2
    # Another visitor's token is not this one's: the cookie is what it must match.
    elsewhere = browser(app).get("/login").text
    token = elsewhere.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    fresh = browser(app)
    fresh.get("/login")
    assert fresh.post("/login", data={"user": "alice", "password": PASSWORD,
                                      "csrf_token": token}).status_code == 403
    # The refusal's page carries a working form; logging in clears the login cookie.
    answer = login_post(forged, {"user": "alice", "password": PASSWORD})
    assert answer.status_code == 303
    assert 'corral_login=""' in answer.headers["set-cookie"] or \
        "corral_login=;" in answer.headers["set-cookie"]

"""Authentication, allowed networks and metrics: who gets in, and what they read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from server_support import CLIENT, Cast, write_site

from corral.backends.base import DomainState, DomainStats
from corral.ops.readings import HostReading
from corral.ops.session import Session
from corral.server.app import create_app
from corral.server.metrics import RequestMetrics, render


def test_no_or_a_bad_token_is_401_with_a_bearer_challenge(client: TestClient,
                                                          cast: Cast) -> None:
    for headers in ({}, {"Authorization": "Bearer crl_nonesuch"},
                    {"Authorization": "Basic YWxpY2U6cHc="}, {"Authorization": "Bearer "},
                    {"Authorization": "Bearer not-even-a-token"}):
        answer = client.get("/api/v1/status", headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["exit_code"] == 11
        assert "Traceback" not in answer.text


def test_a_revoked_token_is_refused_at_once(client: TestClient, cast: Cast) -> None:
    owner = cast.headers("owner")
    issued = client.post("/api/v1/tokens", headers=owner, json={"user": "alice",
                                                                 "name": "laptop"})
    assert issued.status_code == 201
    laptop = {"Authorization": f"Bearer {issued.json()['token']}"}
    assert client.get("/api/v1/whoami", headers=laptop).json()["name"] == "alice"
    listed = client.get("/api/v1/tokens", headers=owner).json()
    assert issued.json()["token"] not in str(listed)
    revoked = client.delete(f"/api/v1/tokens/{issued.json()['id']}", headers=laptop)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    again = client.get("/api/v1/whoami", headers=laptop)
    assert again.status_code == 401
    assert again.json()["error"] == "the token is not valid (unknown or revoked)"
    assert client.get("/api/v1/whoami", headers=owner).status_code == 200


def test_a_removed_user_is_refused_at_once(client: TestClient, cast: Cast) -> None:
    assert client.get("/api/v1/whoami", headers=cast.headers("other")).status_code == 200
    assert client.delete("/api/v1/users/bob", headers=cast.headers("admin")).status_code == 200
    assert client.get("/api/v1/whoami", headers=cast.headers("other")).status_code == 401


def test_a_client_outside_the_allowed_networks_is_refused_before_authentication(
    tmp_path: Path, admin_session: Session, cast: Cast
) -> None:
    site = write_site(tmp_path, networks='"10.99.0.0/16", "fd00::/8"')
    app = create_app(site)
    with TestClient(app, client=CLIENT) as outsider:
        for path in ("/api/v1/status", "/metrics", "/api/openapi.json", "/api/v1/nonesuch"):
            answer = outsider.get(path, headers=cast.headers("admin"))
            assert answer.status_code == 403, path
            assert answer.json()["error"] == ("address 127.0.0.1 is not in the server's "
                                              "allowed networks")
        assert outsider.post("/api/v1/projects/up", json={"text": "x"}).status_code == 403
    with TestClient(app, client=("10.99.3.4", 5000)) as insider:
        assert insider.get("/api/v1/whoami", headers=cast.headers("admin")).status_code == 200
        entries = insider.get("/api/v1/audit", headers=cast.headers("admin"),
                              params={"limit": 100}).json()
    refused = [e for e in entries if e["action"] == "connect"]
    assert len(refused) == 5
    assert {e["source"] for e in refused} == {"127.0.0.1"}
    assert {e["result"] for e in refused} == {"refused"}
    assert {e["target"] for e in refused} >= {"/api/v1/status", "/metrics",
                                              "/api/v1/projects/up"}
    # Nothing else happened for them: no authentication was even tried.
    assert not [e for e in entries if e["action"] == "authenticate"]


def _metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name + "{"):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


def test_metrics_for_administrators_and_metrics_tokens_only(
    client: TestClient, cast: Cast, lab: dict[str, Any]
) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics").headers["www-authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers=cast.headers("owner")).status_code == 403
    # A metrics-only token reads metrics and nothing else.
    assert client.get("/api/v1/status", headers=cast.headers("metrics")).status_code == 403
    for role in ("metrics", "admin"):
        answer = client.get("/metrics", headers=cast.headers(role))
        assert answer.status_code == 200, role
        assert answer.headers["content-type"].startswith("text/plain")
    text = client.get("/metrics", headers=cast.headers("metrics")).text
    assert _metric(text, "corral_service_host_up", service_host="local") == 1
    for host in ("web", "app"):
        assert _metric(text, "corral_vm_state", project="lab", host=host,
                       state="running") == 1
        assert _metric(text, "corral_vm_memory_bytes", project="lab", host=host) == 128 * 2**20
        assert _metric(text, "corral_vm_vcpus", project="lab", host=host) == 1
    assert _metric(text, "corral_jobs", state="done") == 1
    assert _metric(text, "corral_jobs", state="running") == 0
    assert _metric(text, "corral_http_requests_total", route="/api/v1/projects/up",
                   method="POST", status="202") == 1
    assert _metric(text, "corral_http_requests_total", route="/metrics", method="GET",
                   status="401") == 2
    assert _metric(text, "corral_http_request_duration_seconds_count",
                   route="/api/v1/jobs/{job_id}", method="GET", status="200") is not None


def test_metrics_say_when_a_service_host_does_not_answer(
    tmp_path: Path, admin_session: Session, cast: Cast
) -> None:
    site = write_site(tmp_path)
    broken = site.model_copy(update={"service_hosts": {
        **site.service_hosts,
        "gone": site.service_hosts["local"].model_copy(update={"uri": "test:///nonesuch.xml"}),
    }})
    with TestClient(create_app(broken), client=CLIENT) as client:
        text = client.get("/metrics", headers=cast.headers("admin")).text
    assert _metric(text, "corral_service_host_up", service_host="local") == 1
    assert _metric(text, "corral_service_host_up", service_host="gone") == 0


def test_a_project_the_caller_may_not_see_answers_like_a_missing_one(
    client: TestClient, cast: Cast, lab: dict[str, Any]
) -> None:
    bob = cast.headers("other")
    for template in ("/api/v1/projects/{}/status", "/api/v1/projects/{}/removal",
                     "/api/v1/projects/{}/shares", "/api/v1/projects/{}/inventory"):
        hidden = client.get(template.format("lab"), headers=bob)
        missing = client.get(template.format("nosuch"), headers=bob)
        assert hidden.status_code == missing.status_code == 404, template
        assert hidden.json() == {**missing.json(), "error": "project 'lab' not found"}
    for method, template, body in (
            ("POST", "/api/v1/vms/{}.web/pause", None),
            ("POST", "/api/v1/vms/{}.web/memory", {"memory": "128M"}),
            ("GET", "/api/v1/vms/{}.web/log", None),
            ("POST", "/api/v1/projects/{}/start", {}),
            ("POST", "/api/v1/projects/{}/stop", {}),
            ("DELETE", "/api/v1/projects/{}", None)):
        hidden = client.request(method, template.format("lab"), headers=bob, json=body)
        missing = client.request(method, template.format("nosuch"), headers=bob, json=body)
        assert (hidden.status_code, missing.status_code) == (404, 404), template
        assert hidden.json() == {**missing.json(), "error": "project 'lab' not found"}, template


def test_list_and_status_show_only_the_projects_the_caller_may_see(
    client: TestClient, cast: Cast, lab: dict[str, Any]
) -> None:
    def projects(role: str) -> list[str]:
        return [p["name"] for p in client.get("/api/v1/projects",
                                              headers=cast.headers(role)).json()]

    def status(role: str) -> dict[str, Any]:
        answer = client.get("/api/v1/status", headers=cast.headers(role))
        assert answer.status_code == 200
        return dict(answer.json())

    assert projects("owner") == projects("reader") == projects("admin") == ["lab"]
    assert projects("other") == []
    assert {r["project"] for r in status("reader")["rows"]} == {"lab"}
    nobody = status("other")
    assert nobody["rows"] == []
    assert [(h["name"], h["state"], h["vms"]) for h in nobody["service_hosts"]] == [
        ("local", "up", 0)]
    assert [h["vms"] for h in status("admin")["service_hosts"]] == [2]


def test_verifying_the_template_copies_is_a_post_and_audited(
    client: TestClient, cast: Cast
) -> None:
    """Verifying deletes the copies that differ: a change, so never a GET, and in the
    audit log like every change; a user is refused it, and that is audited too."""
    admin, owner = cast.headers("admin"), cast.headers("owner")
    listed = client.get("/api/v1/templates/copies", headers=admin)
    assert listed.status_code == 200 and listed.json()["problems"] == []
    verified = client.post("/api/v1/templates/copies/verify?service_host=local", headers=admin)
    assert verified.status_code == 200, verified.text
    assert verified.json() == {"copies": [], "problems": [], "unreachable": {}}
    assert client.post("/api/v1/templates/copies/verify", headers=owner).status_code == 403
    entries = client.get("/api/v1/audit?limit=10", headers=admin).json()
    assert [(e["user"], e["action"], e["target"], e["result"]) for e in entries
            if e["action"] == "template.verify"] == [
        ("alice", "template.verify", "*", "refused"), ("root", "template.verify", "local", "ok")]


def test_the_api_documents_itself(client: TestClient) -> None:
    """The OpenAPI document and its interactive page, both without a token (they say
    what the API is, nothing of the site)."""
    document = client.get("/api/openapi.json")
    assert document.status_code == 200
    assert "/api/v1/status" in document.json()["paths"]
    page = client.get("/api/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "/api/openapi.json" in page.text


def test_a_vms_cpu_time_is_a_counter_in_seconds() -> None:
    """libvirt's test driver reports no CPU time, so the figure a QEMU guest gives is
    rendered here from a reading that has one."""
    vm = DomainStats(domain="lab-web", project="lab", host="web", service_host="h1",
                     state=DomainState.RUNNING, memory_mib=128, vcpus=1,
                     cpu_time_ns=2_500_000_000, uptime_s=10.0, cpu_percent=25.0)
    text = render(RequestMetrics(), [HostReading("h1", True, None, (vm,))], {}).decode()
    assert "# TYPE corral_vm_cpu_seconds_total counter" in text
    assert _metric(text, "corral_vm_cpu_seconds_total", project="lab", host="web",
                   service_host="h1") == 2.5

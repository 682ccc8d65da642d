"""Project files sent as text: validated, shown and planned like the CLI's files,
and never a way to read the server's own files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from server_support import LAB, Cast


def test_validate_show_and_plan_answer_as_the_cli_does(client: TestClient, cast: Cast) -> None:
    alice = cast.headers("owner")
    assert client.post("/api/v1/validate", headers=alice, json={"text": LAB}).json() == {
        "valid": True, "name": "project.corral"}
    bad = "global {\n    project x\n}\nhost a {\n    memory lots\n}\n"
    invalid = client.post("/api/v1/validate", headers=alice,
                          json={"text": bad, "name": "x.corral"})
    assert invalid.status_code == 422
    body = invalid.json()
    assert body["exit_code"] == 1 and body["kind"] == "input"
    assert body["error"].startswith("x.corral:5:")
    assert [(d["line"], d["file"]) for d in body["diagnostics"]] == [(5, "x.corral")]
    shown = client.post("/api/v1/show", headers=alice, json={"text": LAB}).json()
    assert shown["project"] == "lab" and sorted(shown["hosts"]) == ["app", "web"]
    plan = client.post("/api/v1/plan", headers=alice, json={"text": LAB})
    assert plan.status_code == 200
    assert plan.json()["project"] == "lab" and plan.json()["empty"] is False
    assert {a["kind"] for a in plan.json()["actions"]} == {"create-switch", "create-host"}
    # A name nobody has recorded may be planned by anyone who could create it.
    assert client.post("/api/v1/plan", headers=cast.headers("other"),
                       json={"text": LAB}).status_code == 200


def test_a_project_sent_as_text_reads_no_file_of_the_server(
    client: TestClient, cast: Cast, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the server's secret\n")
    key = tmp_path / "key.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPRIVATE alice@server\n")
    include = f"#include {secret}\nglobal {{\n    project leak\n}}\n"
    text = f"""global {{
    project leak
}}
host a {{
    template base
    sshkey {{ root {key} }}
    files {{
        /etc/copy {{ source {secret} }}
    }}
}}
"""
    messages = []
    for given in (include, text):
        answer = client.post("/api/v1/show", headers=cast.headers("admin"),
                             json={"text": given, "name": "leak.corral"})
        assert answer.status_code == 422
        assert "the server's secret" not in answer.text and "PRIVATE" not in answer.text
        body: dict[str, Any] = answer.json()
        messages += [d["message"] for d in body["diagnostics"]]
    assert any("cannot include files of the server's machine" in m for m in messages)
    assert any(m.startswith("sshkey: a project sent to the server cannot read") for m in messages)
    assert any(m.startswith("files: a project sent to the server cannot read") for m in messages)
    up = client.post("/api/v1/projects/up", headers=cast.headers("admin"),
                     json={"text": text, "name": "leak.corral"})
    assert up.status_code == 422

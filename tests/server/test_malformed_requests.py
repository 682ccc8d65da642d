"""Bad input gets one clear message, never a 500: every path of the OpenAPI document,
with malformed path parameters, query parameters and bodies, as an administrator
(whose requests reach the operations furthest)."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi.testclient import TestClient
from server_support import Cast, wait_job

BAD_SEGMENTS = ["..", "x" * 300, "%00", "lab.", ".web", "-1", "0", "a b", "ÿ€", "%2e%2e",
                "lab.web.more", "UPPER", "9" * 30]
BAD_VALUES: list[Any] = [None, -1, 10**30, "", "x" * 5000, [], {}, True, 1.5, "%00", ["a"]]
BAD_BODIES: list[bytes] = [b"", b"{", b"[]", b"null", b"\"text\"", b"\xff\xfe", b"{}",
                           b'{"unknown": 1}', b"1e999999"]


def _schema(document: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in ref:
        name = ref["$ref"].rsplit("/", 1)[1]
        return dict(document["components"]["schemas"][name])
    return ref


def _bodies(document: dict[str, Any], operation: dict[str, Any]) -> list[bytes | Any]:
    """Malformed bodies, and for a JSON body one per property with each bad value."""
    found: list[bytes | Any] = list(BAD_BODIES)
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        return found
    properties = _schema(document, schema).get("properties", {})
    for name, value in itertools.product(properties, BAD_VALUES):
        found.append({name: value})
    return found


def _paths(path: str) -> list[str]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    if not names:
        return [path]
    return [path.replace("{" + name + "}", bad) for name in names for bad in BAD_SEGMENTS]


def test_every_path_answers_malformed_input_without_a_500(client: TestClient, cast: Cast,
                                                           lab: dict[str, Any]) -> None:
    document = client.get("/api/openapi.json").json()
    admin = cast.headers("admin")
    problems = []
    asked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            queries = [{p["name"]: v} for p in operation.get("parameters", [])
                       if p["in"] == "query" for v in ("", "-5", "x" * 300, "nan", "1e400")]
            for concrete in _paths(path):
                for body in _bodies(document, operation) if method != "get" else [None]:
                    for params in queries or [{}]:
                        kwargs: dict[str, Any] = {"headers": admin, "params": params}
                        if isinstance(body, bytes):
                            kwargs["content"] = body
                            kwargs["headers"] = {**admin, "Content-Type": "application/json"}
                        elif body is not None:
                            kwargs["json"] = body
                        answer = client.request(method.upper(), concrete, **kwargs)
                        asked += 1
                        if answer.status_code >= 500 and answer.status_code != 502:
                            problems.append(f"{method} {concrete} {body!r:.60} {params}: "
                                            f"{answer.status_code} {answer.text[:200]}")
                        elif answer.status_code >= 400:
                            error = answer.json().get("error")
                            if not isinstance(error, str) or not error:
                                problems.append(f"{method} {concrete}: no message")
                            elif "Traceback" in answer.text:
                                problems.append(f"{method} {concrete}: traceback")
                        elif answer.status_code == 202:
                            wait_job(client, answer.json()["href"], admin)
    assert asked > 1000
    assert not problems, "\n".join(problems[:40])
    jobs = client.get("/api/v1/jobs", headers=admin, params={"limit": 1000}).json()
    assert not [j for j in jobs if j["outcome"] == "internal"]

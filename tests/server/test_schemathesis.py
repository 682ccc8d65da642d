"""Schemathesis over the OpenAPI document, as an administrator, for every operation:
generated requests that do not fit the schema (negative mode) and requests that do
(positive mode, which gets past the validation to the operations' logic). None may
get a 500 or an answer without a message."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.schemas import BaseSchema
from server_support import Cast, wait_job, write_site

from corral.server.app import create_app


def _document() -> dict[str, Any]:
    """The OpenAPI document of an app (it does not depend on the site's contents)."""
    with tempfile.TemporaryDirectory() as directory:
        return dict(create_app(write_site(Path(directory))).openapi())


schema: BaseSchema = schemathesis.openapi.from_dict(_document())
# Both modes in one test per operation: each case is drawn in either, and the
# operation's fixtures (most of the time a test takes) are set up once, not twice.
# An operation without a wrong form to send is tested with good requests only.
schema.config.generation.update(modes=[GenerationMode.NEGATIVE, GenerationMode.POSITIVE],
                                max_examples=24, deterministic=True, database="none")


@schema.parametrize()
# An operation whose only parameter is a name in its path has few wrong forms a URL
# can carry, so many generated cases are filtered out; whether that trips Hypothesis's
# health check depended on unrelated code (its derandomised search), never on the API.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.filter_too_much],
          deadline=None)
def test_generated_requests_never_get_a_500(case: Any, client: TestClient,
                                            cast: Cast) -> None:
    admin = cast.headers("admin")
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=admin)
    data = kwargs.pop("data", None)
    if isinstance(data, str | bytes):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    kwargs.pop("timeout", None)
    kwargs.pop("allow_redirects", None)
    kwargs.pop("verify", None)
    kwargs.pop("cookies", None)
    answer = client.request(**kwargs)
    assert answer.status_code < 500 or answer.status_code == 502, answer.text[:300]
    if answer.status_code >= 400:
        assert isinstance(answer.json().get("error"), str), answer.text[:300]
    if answer.status_code == 202:
        wait_job(client, answer.json()["href"], admin)

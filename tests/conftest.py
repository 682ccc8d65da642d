"""Shared fixtures: load project text through the real pipeline (parser, expand, resolve, build),
and the state database a test runs on (SQLite, then PostgreSQL: ``state_url``)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from state_databases import DATABASES, postgres_unavailable
from state_databases import state_url as make_state_url

from corral.errors import SourceErrors
from corral.model.load import load_project
from corral.model.project import Project


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Project]:
    monkeypatch.chdir(tmp_path)  # positions then read p.mln:LINE:COL

    def _load(text: str, name: str = "p.mln", **kwargs) -> Project:
        path = Path(name)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return load_project(path, **kwargs)

    return _load


@pytest.fixture
def errors(load: Callable[..., Project]) -> Callable[..., list[str]]:
    """The rendered ``LINE:COL: message (hint)`` of every error of a file that must fail."""

    def _errors(text: str, **kwargs) -> list[str]:
        with pytest.raises(SourceErrors) as caught:
            load(text, **kwargs)
        return [
            f"{d.span.line}:{d.span.column}: {d.message}" + (f" ({d.hint})" if d.hint else "")
            for d in caught.value.diagnostics
        ]

    return _errors


@pytest.fixture(params=DATABASES)
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty state database: each test that asks runs on SQLite, and
    on PostgreSQL too (skipped, saying why, where no PostgreSQL answers)."""
    if request.param == "postgresql" and (reason := postgres_unavailable()) is not None:
        pytest.skip(reason)
    with make_state_url(request.param, tmp_path) as url:
        yield url

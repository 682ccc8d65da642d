"""Shared fixtures: load project text through the real pipeline (parser, expand, resolve, build)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

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

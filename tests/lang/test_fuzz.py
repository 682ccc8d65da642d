"""Damaged input never escapes as anything but positioned SourceErrors.

``CORRAL_FUZZ_EXAMPLES`` raises the number of mutants (default 1500 here,
about ten seconds).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.lang.load import load_document
from corral.lang.tree import Document

from .fuzzing import Mutant, assert_clean_outcome, copy_fixtures, mutations, write_mutant

EXAMPLES = int(os.environ.get("CORRAL_FUZZ_EXAMPLES", "1500"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def fixture_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_fixtures(tmp_path_factory.mktemp("fuzz"))


@FUZZ
@given(mutant=mutations())
def test_mutated_files_load_or_fail_with_positions(fixture_copy: Path, mutant: Mutant) -> None:
    path = write_mutant(fixture_copy, mutant)
    assert_clean_outcome(lambda: load_document(path))


@settings(max_examples=max(EXAMPLES // 5, 50), deadline=None, database=None)
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".mln", ".yaml"]))
def test_random_bytes(fixture_copy: Path, data: bytes, suffix: str) -> None:
    path = fixture_copy / f"random{suffix}"
    path.write_bytes(data)
    assert_clean_outcome(lambda: load_document(path))


@settings(max_examples=max(EXAMPLES // 5, 50), deadline=None, database=None)
@given(text=st.text(max_size=300), suffix=st.sampled_from([".mln", ".yml"]))
def test_random_text(fixture_copy: Path, text: str, suffix: str) -> None:
    assert_clean_outcome(lambda: load_document(fixture_copy / f"unsaved{suffix}", text))


def test_unmutated_fixtures_load(fixture_copy: Path) -> None:
    for name in ("ldaptest.mln", "italy.yaml", "group03.mln", "bioinfo.mln", "webserv.mln"):
        assert isinstance(load_document(fixture_copy / name), Document)

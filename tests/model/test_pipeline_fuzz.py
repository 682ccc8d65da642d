"""Damaged project files through the whole pipeline: a model or positioned SourceErrors.

Uses the mutation strategy of the language tests (``tests/lang/fuzzing.py``);
``CORRAL_FUZZ_EXAMPLES`` raises the number of mutants (default 600 here).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from lang.fuzzing import Mutant, assert_clean_outcome, copy_fixtures, mutations, write_mutant

from corral.model.load import load_project
from corral.plugins.registry import PluginRegistry

EXAMPLES = int(os.environ.get("CORRAL_FUZZ_EXAMPLES", "600"))
PLUGINS = PluginRegistry.from_entry_points()


@pytest.fixture(scope="module")
def fixture_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_fixtures(tmp_path_factory.mktemp("pipeline-fuzz"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(mutant=mutations())
def test_mutated_projects_resolve_or_fail_with_positions(
    fixture_copy: Path, mutant: Mutant
) -> None:
    path = write_mutant(fixture_copy, mutant)
    assert_clean_outcome(lambda: load_project(path, plugins=PLUGINS))

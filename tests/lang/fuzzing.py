"""Mutated project files for property tests of any stage that reads them.

``mutations()`` draws one of the valid conformance files and damages it a few
times at the token level: delete, duplicate or swap tokens, cut a brace,
insert random bytes or a fragment of the language's own syntax (quotes,
``#include``, ``$[``, YAML markers). ``write_mutant`` puts the result next to
copies of the fixtures, so includes still resolve, and
``assert_clean_outcome`` checks the only acceptable results: a value, or
:class:`~corral.errors.SourceErrors` whose every diagnostic is positioned.

Another test runs the whole pipeline the same way:

    @given(mutations())
    def test_pipeline(fixture_copy, mutant):
        path = write_mutant(fixture_copy, mutant)
        assert_clean_outcome(lambda: load_project(path))
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from corral.errors import SourceErrors

FIXTURES = Path(__file__).parent / "fixtures"

VALID_FILES = (
    "ldaptest.mln",
    "italy.mln",
    "italy.yaml",
    "group03.mln",
    "oscourse.mln",
    "bioinfo.mln",
    "webserv.mln",
)

FRAGMENTS = (
    b"{",
    b"}",
    b";",
    b"=",
    b'"',
    b"'",
    b"\n",
    b"#",
    b"#include ",
    b"#include oscourse.mln\n",
    b"#include nothere.mln\n",
    b"#include group03.mln\n",
    b"$",
    b"$[",
    b"$[gnum]",
    b"$gnum",
    b"$undefined",
    b"$x = 1\n",
    b"global {",
    b"host a {",
    b"- ",
    b": ",
    b"include: servers.txt\n",
    b"&a ",
    b"*a",
    b"[",
    b"\t",
    b"\x00",
    b"\xff",
    b"\xc3",
    "é".encode(),
)

_TOKEN = re.compile(rb"\s+|[{};=]|[^\s{};=]+")


@dataclass(frozen=True)
class Mutant:
    """A damaged copy of fixture ``name``: its bytes and the steps that made them."""

    name: str
    data: bytes
    steps: tuple[str, ...]


def _tokens(data: bytes) -> list[bytes]:
    return _TOKEN.findall(data)


@st.composite
def _mutate(draw: st.DrawFn, tokens: list[bytes]) -> tuple[list[bytes], str]:
    tokens = list(tokens)
    kind = draw(st.sampled_from(["delete", "duplicate", "swap", "cut_brace", "bytes", "fragment"]))
    if not tokens:
        kind = "fragment"
    last = max(len(tokens) - 1, 0)
    if kind == "delete":
        index = draw(st.integers(0, last))
        del tokens[index]
        return tokens, f"delete {index}"
    if kind == "duplicate":
        index = draw(st.integers(0, last))
        tokens.insert(index, tokens[index])
        return tokens, f"duplicate {index}"
    if kind == "swap":
        first, second = draw(st.integers(0, last)), draw(st.integers(0, last))
        tokens[first], tokens[second] = tokens[second], tokens[first]
        return tokens, f"swap {first} {second}"
    if kind == "cut_brace":
        braces = [i for i, token in enumerate(tokens) if token in (b"{", b"}")]
        if braces:
            index = draw(st.sampled_from(braces))
            del tokens[index]
            return tokens, f"cut brace {index}"
        return tokens, "no brace to cut"
    index = draw(st.integers(0, len(tokens)))
    if kind == "bytes":
        inserted = draw(st.binary(min_size=1, max_size=8))
    else:
        inserted = draw(st.sampled_from(FRAGMENTS))
    tokens.insert(index, inserted)
    return tokens, f"insert {inserted!r} at {index}"


@st.composite
def mutations(draw: st.DrawFn, files: tuple[str, ...] = VALID_FILES, max_steps: int = 4) -> Mutant:
    """A valid fixture damaged by one to ``max_steps`` token-level mutations."""
    name = draw(st.sampled_from(files))
    tokens = _tokens((FIXTURES / name).read_bytes())
    steps: list[str] = []
    for _ in range(draw(st.integers(1, max_steps))):
        tokens, step = draw(_mutate(tokens))
        steps.append(step)
    return Mutant(name=name, data=b"".join(tokens), steps=tuple(steps))


def copy_fixtures(directory: Path) -> Path:
    """Copy the fixture files into ``directory`` (mutants are written beside them)."""
    shutil.copytree(FIXTURES, directory, dirs_exist_ok=True)
    return directory


def write_mutant(directory: Path, mutant: Mutant) -> Path:
    """Write ``mutant`` beside the fixture copies, keeping its suffix (YAML stays YAML)."""
    path = directory / f"mutant-{mutant.name}"
    path.write_bytes(mutant.data)
    return path


def assert_clean_outcome(run: Callable[[], object]) -> object:
    """Run ``run``; only a value or fully positioned SourceErrors may come out."""
    try:
        return run()
    except SourceErrors as errors:
        assert errors.diagnostics, "SourceErrors without diagnostics"
        for diagnostic in errors.diagnostics:
            span = diagnostic.span
            assert span.file, diagnostic
            assert span.line >= 1 and span.column >= 1, diagnostic
            assert diagnostic.message.strip(), diagnostic
        assert errors.render()
        return errors

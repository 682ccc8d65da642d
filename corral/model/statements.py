"""Read a block of statements against a key table (:mod:`corral.model.schema`).

Checks every statement's key is known (else "unknown key ... did you mean"),
its shape (flag, one value, block ...) and that a key which may appear once
does; then converts the simple keys into model fields. Problems go to a
:class:`~corral.errors.DiagnosticSink` with the span of the word at fault, and
the offending statement is skipped, so one pass reports every problem.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from corral.errors import DiagnosticSink, Span
from corral.lang.resolve import did_you_mean
from corral.lang.tree import Statement, Word
from corral.model.schema import KeySpec, Shape

Groups = dict[str, list[Statement]]


class Invalid:
    """Marker for a value that failed conversion (already reported)."""


INVALID = Invalid()


def read_block(
    statements: tuple[Statement, ...],
    table: Mapping[str, KeySpec],
    sink: DiagnosticSink,
    claimed: Callable[[str], bool] = lambda key: False,
) -> Groups:
    """Statements of a block grouped by key, after key and shape checks."""
    groups: Groups = {}
    for statement in statements:
        key = statement.key.text
        spec = table.get(key)
        if spec is None:
            if claimed(key):
                groups.setdefault(key, []).append(statement)
            else:
                sink.error(statement.span, f"unknown key '{key}'", did_you_mean(key, table))
            continue
        if not check_shape(statement, spec, sink):
            continue
        previous = groups.get(key)
        if previous and not spec.repeatable and spec.shape is not Shape.LABELLED_BLOCK:
            sink.error(statement.span, f"'{key}' is set twice (first at {previous[0].span})")
            continue
        groups.setdefault(key, []).append(statement)
    return groups


def check_shape(statement: Statement, spec: KeySpec, sink: DiagnosticSink) -> bool:
    """True when ``statement`` has the shape ``spec`` asks for; else reports why."""
    key, count, has_block = spec.name, len(statement.values), statement.block is not None
    problem = None
    if spec.shape is Shape.FLAG and (count or has_block):
        problem = f"'{key}' is a flag and takes no value"
    elif spec.shape is Shape.VALUE and (count != 1 or has_block):
        problem = f"'{key}' takes exactly one value: {key} VALUE"
    elif spec.shape is Shape.VALUES and (count == 0 or has_block):
        problem = f"'{key}' takes one or more values"
    elif spec.shape is Shape.BLOCK and (count or not has_block):
        problem = f"'{key}' is a block: {key} {{ ... }}"
    elif spec.shape is Shape.LABELLED_BLOCK and (count != 1 or not has_block):
        problem = f"'{key}' is a block with one name: {key} NAME {{ ... }}"
    elif spec.shape is Shape.VALUES_OR_BLOCK and (count == 0) == (not has_block):
        problem = f"'{key}' takes values or a block, not both and not neither"
    if problem is None:
        return True
    sink.error(_where(statement, spec), problem)
    return False


def _where(statement: Statement, spec: KeySpec) -> Span:
    """Point at the first surplus value when there is one, else at the key."""
    if spec.shape is Shape.LABELLED_BLOCK or not statement.values:
        return statement.span
    surplus = 1 if spec.shape is Shape.VALUE and len(statement.values) > 1 else 0
    return statement.values[surplus].span


def convert(spec: KeySpec, word: Word, sink: DiagnosticSink) -> Any:
    """``spec.convert(word.text)``, or :data:`INVALID` after reporting at the word."""
    assert spec.convert is not None
    ok, result = _converted(spec.convert, word.text)
    if ok:
        return result
    sink.error(word.span, f"{spec.name}: {result}")
    return INVALID


@lru_cache(maxsize=8192)
def _converted(function: Callable[[str], Any], text: str) -> tuple[bool, Any]:
    """Memo of the pure converters: a superclass value is inherited by thousands of hosts."""
    try:
        return True, function(text)
    except ValueError as error:
        return False, str(error)


def simple_fields(
    groups: Groups, table: Mapping[str, KeySpec], sink: DiagnosticSink
) -> dict[str, Any]:
    """Model fields of the flag/value/values keys that name a field in the table."""
    fields: dict[str, Any] = {}
    for key, statements in groups.items():
        spec = table.get(key)
        if spec is None or spec.field is None:
            continue
        if spec.shape is Shape.FLAG:
            fields[spec.field] = True
        elif spec.shape is Shape.VALUE and spec.convert is not None:
            value = convert(spec, statements[0].values[0], sink)
            if value is not INVALID:
                fields[spec.field] = value
        elif spec.shape is Shape.VALUES and spec.convert is not None:
            converted = [convert(spec, w, sink) for s in statements for w in s.values]
            fields[spec.field] = tuple(v for v in converted if v is not INVALID)
    return fields


def value_word(groups: Groups, key: str) -> Word | None:
    """The (first) value word of ``key``, for positioning cross-field errors."""
    statements = groups.get(key)
    if not statements or not statements[0].values:
        return None
    return statements[0].values[0]


def words_of(statements: tuple[Statement, ...]) -> list[Word]:
    """All words of a list block (``packages { a b \\n c }``), each line's key first."""
    return [word for s in statements for word in (s.key, *s.values)]

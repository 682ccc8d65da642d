"""Corral's block language written from statements, words quoted as the parser
reads them back (:func:`corral.lang.rewrite.written`), so a converter never
builds project text by hand and a name with spaces or quotes stays one word."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from corral.lang.rewrite import DEFAULT_INDENT, written

_NOT_NAME = re.compile(r"[^A-Za-z0-9-]+")
_NOT_TEMPLATE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Stmt:
    """A statement (``body`` None) or a block, with comment lines written above it."""

    words: tuple[str, ...]
    body: tuple[Stmt, ...] | None = None
    comments: tuple[str, ...] = field(default=())


def stmt(*words: str, comments: Sequence[str] = ()) -> Stmt:
    return Stmt(tuple(words), None, tuple(comments))


def block(words: Sequence[str], body: Sequence[Stmt], comments: Sequence[str] = ()) -> Stmt:
    return Stmt(tuple(words), tuple(body), tuple(comments))


def render(header: Sequence[str], stanzas: Sequence[Stmt]) -> str:
    """The file: ``header`` as comment lines, then each stanza after a blank line."""
    lines = [_comment(text) for text in header]
    for stanza in stanzas:
        lines.append("")
        lines.extend(_lines(stanza, ""))
    return "\n".join(lines) + "\n"


def _lines(statement: Stmt, indent: str) -> list[str]:
    out = [indent + _comment(text) for text in statement.comments]
    head = " ".join(written(w) for w in statement.words)
    if statement.body is None:
        return [*out, indent + head]
    if not statement.body:
        return [*out, f"{indent}{head} {{}}"]
    out.append(f"{indent}{head} {{")
    for inner in statement.body:
        out.extend(_lines(inner, indent + DEFAULT_INDENT))
    out.append(indent + "}")
    return out


def _comment(text: str) -> str:
    """A comment line (its leading indent kept); a space after ``#`` so no text
    becomes an ``#include``, and line breaks in the text cannot end the comment."""
    indent = text[: len(text) - len(text.lstrip(" "))]
    flat = " ".join(text.split())
    return f"# {indent}{flat}" if flat else "#"


def name_of(text: str, fallback: str = "x") -> str:
    """``text`` as a Corral name (letters, digits, hyphens): other runs become ``-``."""
    cleaned = _NOT_NAME.sub("-", text).strip("-")
    return cleaned or fallback


def template_name_of(text: str) -> str:
    """``text`` as a name ``corral template add`` accepts."""
    cleaned = _NOT_TEMPLATE.sub("-", text).lstrip(".")
    return cleaned or "template"

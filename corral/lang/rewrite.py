"""Changing one statement of a block-language text and leaving every other byte.

Three edits, each on a statement placed by :mod:`corral.lang.layout`:

* :func:`replace_values` puts new value words where the old ones stood (the
  key, a ``=``, the spacing and a comment after them stay);
* :func:`insert` adds a statement (or a small tree of new blocks) to a block,
  on a line of its own indented like its siblings, or inline in a one-line
  block; at the top level it is appended to the file after a blank line;
* :func:`remove` takes a statement or a whole block out: the whole line when
  it stands alone on its line (with the comment that ends that line, which is
  about it), else only its words and one ``;`` beside them.

Words are written as the parser reads them back: bare when they can be, else
in double quotes with ``\\`` and ``"`` escaped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from corral.lang.layout import Placed

_BARE = re.compile(r"[^\s{};#\"'][^\s{};#]*")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}
DEFAULT_INDENT = "    "
Position = Literal["first", "last"]


def written(word: str) -> str:
    """``word`` as the parser reads it back as one word with this very text."""
    if _BARE.fullmatch(word) and word != "=":
        return word
    return '"' + "".join(_ESCAPES.get(c, c) for c in word) + '"'


@dataclass(frozen=True, slots=True)
class NewStatement:
    """A statement to add: its words, and for a block the statements inside."""

    words: tuple[str, ...]
    children: tuple[NewStatement, ...] | None = None

    def head(self) -> str:
        return " ".join(written(w) for w in self.words)

    def inline(self) -> str:
        """On one line: ``network eth1 { address dhcp }``."""
        if self.children is None:
            return self.head()
        inner = "; ".join(c.inline() for c in self.children)
        return f"{self.head()} {{ {inner} }}" if inner else f"{self.head()} {{ }}"

    def lines(self, indent: str, unit: str) -> list[str]:
        """One statement a line, nested blocks indented by ``unit`` more."""
        if self.children is None:
            return [indent + self.head()]
        inner = [line for c in self.children for line in c.lines(indent + unit, unit)]
        return [f"{indent}{self.head()} {{", *inner, f"{indent}}}"]


def replace_values(text: str, statement: Placed, values: Sequence[str]) -> str:
    """``statement`` with ``values`` in place of its value words."""
    new = " ".join(written(v) for v in values)
    old = statement.values
    if old:
        start, end = (old[0].start, old[-1].end) if new else (statement.key.end, old[-1].end)
        return text[:start] + new + text[end:]
    if not new:
        return text
    at = statement.key.end
    return text[:at] + " " + new + text[at:]


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def _line_end(text: str, offset: int) -> int:
    """The offset just past the newline ending the line of ``offset`` (or the text's end)."""
    end = text.find("\n", offset)
    return len(text) if end < 0 else end + 1


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _starts_line(text: str, offset: int) -> bool:
    return not text[_line_start(text, offset):offset].strip()


def _ends_line(text: str, offset: int) -> bool:
    """Only blanks, a ``;`` or a comment follow ``offset`` on its line."""
    rest = text[offset:_line_end(text, offset)].strip()
    rest = rest.removeprefix(";").strip()
    return not rest or (rest.startswith("#") and not rest.startswith("#include"))


def indent_unit(text: str, statements: Sequence[Placed]) -> str:
    """The file's indentation step: that of the first statement on its own line in
    a top-level block, else four spaces."""
    for statement in statements:
        for child in statement.children or ():
            start = _line_start(text, child.start)
            indent = text[start:child.start]
            if indent and not indent.strip():
                return indent
    return DEFAULT_INDENT


def insert(text: str, parent: Placed | None, new: NewStatement, unit: str,
           position: Position = "last") -> tuple[str, int]:
    """``text`` with ``new`` added to block ``parent`` (None: the file), and its line."""
    newline = _newline(text)
    if parent is None:
        body = text if not text or text.endswith("\n") else text + newline
        gap = newline if body.strip() else ""
        added = newline.join(new.lines("", unit)) + newline
        return body + gap + added, line_of(body + gap, len(body + gap))
    assert parent.open is not None and parent.close is not None
    children = parent.children or ()
    if position == "first":
        return _insert_first(text, parent, new, unit)
    if not _starts_line(text, parent.close) or (
        not children and line_of(text, parent.open) == line_of(text, parent.close)
    ):
        return _insert_inline(text, parent, new)
    if children:
        last = children[-1]
        at = _line_end(text, last.end)
        indent = text[_line_start(text, last.start):last.start]
        outer = text[_line_start(text, parent.close):parent.close]
        if indent.strip():
            indent = outer + unit
        elif indent.startswith(outer) and len(indent) > len(outer):
            unit = indent[len(outer):]  # this block's own step, for new nested blocks
    else:
        at = _line_start(text, parent.close)
        indent = text[at:parent.close] + unit
    block = newline.join(new.lines(indent, unit)) + newline
    return text[:at] + block + text[at:], line_of(text, at)


def _insert_inline(text: str, parent: Placed, new: NewStatement) -> tuple[str, int]:
    """In a block whose ``}`` follows a statement on its line: ``{ a; NEW }``."""
    assert parent.open is not None and parent.close is not None
    children = parent.children or ()
    if not children:
        between = text[parent.open + 1:parent.close]
        if not between.strip():
            return (text[:parent.open + 1] + f" {new.inline()} " + text[parent.close:],
                    line_of(text, parent.open))
    at = children[-1].end
    rest = text[at:parent.close]
    if rest.strip().startswith(";"):
        at += rest.index(";") + 1
    return text[:at] + f"; {new.inline()}" + text[at:], line_of(text, at)


def _insert_first(text: str, parent: Placed, new: NewStatement,
                  unit: str) -> tuple[str, int]:
    """As the block's first statement: on a line of its own before the first one,
    indented like it, when it starts a line below the ``{``; else right after ``{``."""
    assert parent.open is not None
    children = parent.children or ()
    if children and line_of(text, children[0].start) > line_of(text, parent.open):
        first = children[0]
        start = _line_start(text, first.start)
        indent = text[start:first.start]
        if indent.strip():  # something else precedes the first statement on its line
            indent = ""
        lines = new.lines(indent, unit)
        newline = _newline(text)
        return text[:start] + newline.join(lines) + newline + text[start:], line_of(text, start)
    at = parent.open + 1
    return text[:at] + f" {new.inline()};" + text[at:], line_of(text, at)


def remove(text: str, statement: Placed) -> str:
    """``text`` without ``statement`` (a plain one or a whole block)."""
    start, end = statement.start, statement.end
    if _starts_line(text, start) and _ends_line(text, end):
        return text[:_line_start(text, start)] + text[_line_end(text, end):]
    after = text[end:]
    stripped = after.lstrip(" \t")
    if stripped.startswith(";"):
        cut = end + (len(after) - len(stripped)) + 1
        cut += len(text[cut:]) - len(text[cut:].lstrip(" \t"))
        return text[:start] + text[cut:]
    before = text[:start].rstrip(" \t")
    if before.endswith(";"):
        return before[:-1] + text[end:]
    return before + (" " if before and not before.endswith("\n") else "") + after.lstrip(" \t")

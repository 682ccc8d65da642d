"""``corral set`` / ``corral unset``: one statement of a project file changed in place.

:func:`edit_key` finds the statement a :class:`~corral.lang.keypath.KeyPath`
names in the file's *expanded* tree (includes spliced, variables
substituted: what the project means), then changes the file's text where
that statement stands (:mod:`corral.lang.rewrite`). Every other byte stays.

Refused, with the place at fault, rather than guessed:

* a YAML file (its layout and comments cannot be kept by rewriting it);
* a statement or block the path leads to that is stated more than once;
* a statement that lives in an included file, or a missing one whose block
  does: that file is the one to edit, and the message names it;
* a value for a block (set the keys inside it), a labelled block named
  without its label, and a ``$variable`` (its definition is not in the tree).

Checking that the result is a valid project is the caller's job
(:mod:`corral.ops.edit_file`): this module only knows the language.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from corral.errors import InvalidRequest, NotFoundError
from corral.lang.keypath import Found, KeyPath, Missing, find
from corral.lang.layout import Placed, by_position, placed_statements
from corral.lang.load import YAML_SUFFIXES
from corral.lang.parser import parse_text
from corral.lang.rewrite import (
    NewStatement,
    indent_unit,
    insert,
    remove,
    replace_values,
    written,
)
from corral.lang.tree import Document, Statement

BOM = "\ufeff"
Action = Literal["changed", "added", "removed"]


@dataclass(frozen=True, slots=True)
class KeyChange:
    """What one edit did: the file and line, the statement before and after
    (None when it was added or removed), as one line of text each."""

    file: str
    line: int
    path: str
    action: Action
    old: str | None
    new: str | None

    def summary(self) -> str:
        """``lab.corral:12: memory 128M -> 256M`` (or ``added ...``, ``removed ...``)."""
        if self.action == "added":
            return f"{self.file}:{self.line}: added {self.new}"
        if self.action == "removed":
            return f"{self.file}:{self.line}: removed {self.old}"
        old, new = self.old or "", self.new or ""
        key = old.split(" ", 1)[0]
        after = new[len(key):].strip() if new.startswith(key) else new
        return f"{self.file}:{self.line}: {old} -> {after or '(no value)'}"

    def as_json(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "path": self.path,
                "action": self.action, "old": self.old, "new": self.new}


@dataclass(frozen=True, slots=True)
class Edited:
    """The whole edited text and the change made."""

    text: str
    change: KeyChange


def edit_key(text: str, file: str, path: KeyPath, values: Sequence[str] | None, *,
             view: Document, labelled: Collection[str]) -> Edited:
    """Set (``values``; no words for a flag) or unset (None) what ``path`` names.

    ``view`` is the expanded tree of the project ``text`` is the file of, its
    positions naming this file ``file``; ``labelled`` the keys whose blocks
    take a label (``host``, ``network`` ...), used to write missing blocks.
    """
    if any(segment.startswith("$") for segment in path.segments):
        raise InvalidRequest(f"{file}: {path}: variables are not edited by PATH (their "
                             "definitions leave the tree when they are substituted)",
                             hint="change the definition `$name = value` by hand")
    target = find(view.statements, path)
    if Path(file).suffix.lower() in YAML_SUFFIXES:
        where = _position(target, file)
        raise InvalidRequest(f"{where}: {file} is a YAML file, which is not edited in place "
                             "(its comments and layout could not be kept)",
                             hint=f"change {path} in it by hand")
    bom = BOM if text.startswith(BOM) else ""
    body = text.removeprefix(BOM)
    parse_text(body, file)  # the file's own syntax errors, before anything else
    placed = placed_statements(body)
    index = by_position(placed)
    if isinstance(target, Found):
        statement = _here(target.statement, file, path, index)
        edited = (_unset(body, file, path, statement) if values is None
                  else _set(body, file, path, target.statement, statement, values))
    elif values is None:
        raise NotFoundError(f"{file}: {path} is not stated: nothing to remove")
    else:
        parent = None
        if target.parent is not None:
            parent = _here(target.parent, file, path, index)
        edited = _add(body, file, path, parent, _new(target.rest, values, labelled, path),
                      indent_unit(body, placed))
    return Edited(bom + edited.text, edited.change)


def _position(target: Found | Missing, file: str) -> str:
    statement = target.statement if isinstance(target, Found) else target.parent
    return str(statement.span) if statement is not None else f"{file}:1:1"


def _here(statement: Statement, file: str, path: KeyPath,
          index: dict[tuple[int, int], Placed]) -> Placed:
    """Where ``statement`` of the expanded tree stands in this file's text."""
    span = statement.span
    if span.file != file:
        what = f"{statement.key.text} {statement.label or ''}".strip()
        raise InvalidRequest(
            f"{span}: {path} leads to `{what}` in {span.file}, which {file} includes: "
            f"edit that file instead", hint=f"corral set {span.file} ... changes it there")
    placed = index.get((span.line, span.column))
    if placed is None:
        raise InvalidRequest(f"{span}: {path} is not written there as one statement "
                             "(it comes from a variable): change it by hand")
    return placed


def _statement_text(placed: Placed) -> str:
    """A statement as one line: its words as written, ``{ ... }`` for a block's body."""
    words = " ".join(p.written for p in placed.words)
    return f"{words} {{ ... }}" if placed.children is not None else words


def _set(text: str, file: str, path: KeyPath, statement: Statement, placed: Placed,
         values: Sequence[str]) -> Edited:
    if statement.is_block:
        raise InvalidRequest(
            f"{statement.span}: {path} is a block ({_statement_text(placed)}): set the keys "
            "inside it, or unset it")
    edited = replace_values(text, placed, values)
    after = " ".join([placed.key.written, *(written(v) for v in values)])
    change = KeyChange(file, placed.key.line, str(path), "changed", _statement_text(placed),
                       after)
    return Edited(edited, change)


def _unset(text: str, file: str, path: KeyPath, placed: Placed) -> Edited:
    change = KeyChange(file, placed.key.line, str(path), "removed", _statement_text(placed),
                       None)
    return Edited(remove(text, placed), change)


def _add(text: str, file: str, path: KeyPath, parent: Placed | None, new: NewStatement,
         unit: str) -> Edited:
    if parent is not None and parent.children is None:
        raise InvalidRequest(f"{file}:{parent.key.line}:{parent.key.column}: {path} goes "
                             f"through {_statement_text(parent)}, which is not a block")
    edited, line = insert(text, parent, new, unit)
    return Edited(edited, KeyChange(file, line, str(path), "added", None, new.inline()))


def _new(rest: tuple[str, ...], values: Sequence[str], labelled: Collection[str],
         path: KeyPath) -> NewStatement:
    """The statement (in new blocks as needed) the missing ``rest`` of the path stands for."""
    key = rest[0]
    if len(rest) == 1:
        return NewStatement((key, *values))
    if key in labelled:
        if len(rest) == 2:
            raise InvalidRequest(f"{path}: `{key} {rest[1]}` is a block: set a key inside it "
                                 f"({path}.KEY)")
        return NewStatement((key, rest[1]), (_new(rest[2:], values, labelled, path),))
    return NewStatement((key,), (_new(rest[1:], values, labelled, path),))

"""A PATH naming one statement of a project file, and finding it in a tree.

``host.web.memory`` is the ``memory`` statement of ``host web { ... }``;
``host.web.network.eth0.address`` goes through the labelled block
``network eth0 { ... }``; ``global.sshkey.root`` through the unlabelled
blocks ``global { sshkey { ... } }``. A segment is a key, or the label that
follows a key whose block has one; a segment holding a dot is written in
double quotes (``host."web.lab".memory``).

Finding walks the tree the way the path reads: where a block with the next
two segments as key and label exists, both are consumed; else an unlabelled
block with the next segment as key. A statement (or block) stated twice where
the path leads is ambiguous and refused, naming every place; nothing is
guessed. Where the path leaves the tree, the result says which block it left
(to insert into) and what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from corral.errors import InvalidRequest
from corral.lang.tree import Statement

MAX_PATH = 1000


@dataclass(frozen=True, slots=True)
class KeyPath:
    """The segments of a PATH and the PATH as given."""

    segments: tuple[str, ...]
    text: str

    def __str__(self) -> str:
        return self.text


def parse_key_path(text: str) -> KeyPath:
    """Split ``text`` at dots (not inside double quotes); an empty segment is refused."""
    if not text or len(text) > MAX_PATH:
        raise InvalidRequest(f"PATH must be 1 to {MAX_PATH} characters",
                             hint="e.g. host.web.memory or host.web.network.eth0.address")
    segments: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "." and not quoted:
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    segments.append("".join(current))
    if quoted:
        raise InvalidRequest(f"PATH {text!r}: a quote is not closed")
    if any(not s or s.isspace() for s in segments):
        raise InvalidRequest(f"PATH {text!r} has an empty segment",
                             hint="segments are separated by single dots: host.web.memory")
    return KeyPath(tuple(segments), text)


@dataclass(frozen=True, slots=True)
class Found:
    """The statement the path names."""

    statement: Statement


@dataclass(frozen=True, slots=True)
class Missing:
    """The path leaves the tree: ``parent`` is the last block it reached (None: the
    top level) and ``rest`` the segments no statement stands for."""

    parent: Statement | None
    rest: tuple[str, ...]


def find(statements: Sequence[Statement], path: KeyPath) -> Found | Missing:
    """The statement ``path`` names in ``statements``, or where it goes missing."""
    segments = path.segments
    level: Sequence[Statement] = statements
    parent: Statement | None = None
    index = 0
    while True:
        key = segments[index]
        if index == len(segments) - 1:
            matches = [s for s in level if s.key.text == key]
            if matches:
                return Found(_one(matches, path))
            return Missing(parent, segments[index:])
        label = segments[index + 1]
        labelled = [s for s in level if s.is_block and s.key.text == key
                    and len(s.values) == 1 and s.values[0].text == label]
        if labelled:
            block = _one(labelled, path)
            if index + 2 == len(segments):
                return Found(block)
            parent, level, index = block, block.block or (), index + 2
            continue
        plain = [s for s in level if s.is_block and s.key.text == key and not s.values]
        if not plain:
            return Missing(parent, segments[index:])
        parent = _one(plain, path)
        level, index = parent.block or (), index + 1


def _one(matches: list[Statement], path: KeyPath) -> Statement:
    if len(matches) == 1:
        return matches[0]
    where = ", ".join(str(s.span) for s in matches[1:])
    labels = [s.label for s in matches if s.is_block and s.label is not None]
    hint = (f"name one by its label: {path}.{labels[0]}" if len(labels) == len(matches)
            and len(set(labels)) == len(labels) else "change the one you mean by hand")
    raise InvalidRequest(
        f"{matches[0].span}: {path} is ambiguous: it is stated more than once "
        f"(also at {where})", hint=hint)

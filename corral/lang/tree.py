"""The syntax tree every encoding (block language, YAML) parses into.

A project file is a list of :class:`Statement`. A statement is a key, zero or
more value words and, for a block, a list of child statements. Every
:class:`Word` keeps the :class:`~corral.errors.Span` it came from, through
``#include``, variable substitution and superclass merging, so any later stage
can point at the text that caused a problem.

    host web1 { memory 128M }
    -> Statement(key=Word("host"), values=[Word("web1")],
                 block=[Statement(key=Word("memory"), values=[Word("128M")])])
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from corral.errors import Span


@dataclass(frozen=True, slots=True)
class Word:
    """A token with its origin; ``text`` is already variable-expanded once expand ran."""

    text: str
    span: Span

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Statement:
    """``key value... [{ block }]``; ``block`` is None for a plain statement."""

    key: Word
    values: tuple[Word, ...] = ()
    block: tuple[Statement, ...] | None = None

    @property
    def span(self) -> Span:
        return self.key.span

    @property
    def label(self) -> str | None:
        """The first value of a block statement (``host NAME {``), if any."""
        return self.values[0].text if self.values else None

    @property
    def is_block(self) -> bool:
        return self.block is not None

    def with_block(self, block: tuple[Statement, ...]) -> Statement:
        return replace(self, block=block)


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed file: its top-level statements and the path it was read from."""

    path: str
    statements: tuple[Statement, ...] = field(default_factory=tuple)

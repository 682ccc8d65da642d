"""Where each statement of a block-language text stands, to the character.

The syntax tree (:mod:`corral.lang.tree`) keeps where words start, which is
all later stages need; editing a file in place needs more: where a word ends
as written (quotes included), where a block's braces are, whether a ``=``
separates key and value. :func:`placed_statements` reads that from the
grammar's own lexer, so it splits words exactly as the parser does.

It is meant for text :func:`~corral.lang.parser.parse_text` accepted: the
braces then balance, and every statement here has its twin in the tree at
the same line and column.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.lang.parser import grammar

WORD_TYPES = frozenset({"WORD", "DQSTRING", "SQSTRING"})


@dataclass(frozen=True, slots=True)
class Piece:
    """One word as written (``"a b"`` with its quotes), its offsets and position."""

    written: str
    start: int
    end: int
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Placed:
    """A statement as it stands in the text: its words, and for a block its braces
    (offsets of ``{`` and ``}``) and the statements between them."""

    words: tuple[Piece, ...]
    children: tuple[Placed, ...] | None = None
    open: int | None = None
    close: int | None = None

    @property
    def key(self) -> Piece:
        return self.words[0]

    @property
    def values(self) -> tuple[Piece, ...]:
        """The value words, without a ``key = value`` separator."""
        if len(self.words) >= 2 and self.words[1].written == "=":
            return self.words[2:]
        return self.words[1:]

    @property
    def start(self) -> int:
        return self.key.start

    @property
    def end(self) -> int:
        """Just past the statement: its last word, or its block's ``}``."""
        return self.close + 1 if self.close is not None else self.words[-1].end


@dataclass
class _Open:
    """A block being read: its head words, its ``{`` and the statements so far."""

    words: tuple[Piece, ...]
    open: int
    children: list[Placed]


def placed_statements(text: str) -> tuple[Placed, ...]:
    """The statements of ``text`` (which must parse) with their offsets."""
    top: list[Placed] = []
    stack: list[_Open] = []
    words: list[Piece] = []

    def siblings() -> list[Placed]:
        return stack[-1].children if stack else top

    def flush() -> None:
        if words:
            siblings().append(Placed(tuple(words)))
            words.clear()

    for token in grammar().lex(text):
        piece = Piece(token.value, token.start_pos or 0, token.end_pos or 0,
                      token.line or 1, token.column or 1)
        if token.type in WORD_TYPES:
            words.append(piece)
        elif token.type == "INCLUDE":
            flush()
            siblings().append(Placed((piece,)))
        elif token.type == "LBRACE":
            stack.append(_Open(tuple(words), piece.start, []))
            words.clear()
        elif token.type == "RBRACE":
            flush()
            block = stack.pop()
            siblings().append(Placed(block.words, tuple(block.children), block.open,
                                     piece.start))
        else:  # a newline or ';' ends a statement
            flush()
    flush()
    return tuple(top)


def by_position(statements: tuple[Placed, ...]) -> dict[tuple[int, int], Placed]:
    """Every statement (nested ones too) by the line and column of its key."""
    found: dict[tuple[int, int], Placed] = {}
    pending = list(statements)
    while pending:
        statement = pending.pop()
        found[(statement.key.line, statement.key.column)] = statement
        pending.extend(statement.children or ())
    return found

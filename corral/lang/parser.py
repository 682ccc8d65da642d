"""Parse the block language (``grammar.lark``) into a syntax tree.

This stage only reads text: ``#include`` becomes a statement whose key is
``#include`` (no unquoted word can start with ``#``, so the key cannot clash
with a real one) and ``$variables`` are left as written; both are the job of
:mod:`corral.lang.expand`. Every word keeps the ``file:line:column`` of its
first character, and every problem is raised as :class:`~corral.errors.SourceErrors`.

    host uno { superclass basic }
    -> Statement(Word("host"), (Word("uno"),), (Statement(Word("superclass"), (Word("basic"),)),))
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import cast

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from corral.errors import Diagnostic, DiagnosticSink, SourceErrors, Span
from corral.lang.tree import Document, Statement, Word

INCLUDE_KEY = "#include"
"""Key of the statement that stands for an ``#include`` until expand splices it."""

MAX_NESTING = 100
"""Deepest block nesting accepted; real projects use four or five levels."""

_ESCAPES = {"n": "\n", "t": "\t"}
_ESCAPE = re.compile(r"\\(.)")
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class QuotedWord(Word):
    """A word written in quotes.

    Quoting makes a word plain text: a quoted ``"="`` is a value, not the
    ``key = value`` separator, and a quoted ``"#include"`` is not an include.
    ``literal`` marks a 'single-quoted' word, in which ``$name`` is not replaced.
    The type survives expand and resolve (YAML values are quoted words too):
    ``runcmd`` needs to know that a word was written as exactly one word.
    """

    literal: bool = False


@lru_cache(maxsize=1)
def grammar() -> Lark:
    """The compiled LALR parser; built once, it is immutable afterwards. Its
    lexer is what :mod:`corral.lang.layout` splits words with."""
    source = files("corral.lang").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(source, parser="lalr", lexer="contextual", maybe_placeholders=False)


def parse_text(text: str, file: str) -> Document:
    """Parse block-language ``text`` read from ``file`` (used only in positions)."""
    check_characters(text, file)
    try:
        tree = grammar().parse(text)
    except UnexpectedInput as error:
        raise SourceErrors([_describe(error, text, file)]) from None
    builder = _TreeBuilder(file)
    statements = builder.items(tree.children, depth=0)
    builder.sink.raise_if_any()
    return Document(path=file, statements=statements)


def check_characters(text: str, file: str) -> None:
    """Refuse NULs and other control characters: they mean a binary or mangled file."""
    match = _FORBIDDEN.search(text)
    if match is None:
        return
    offset = match.start()
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    raise SourceErrors.single(
        Span(file, line, column),
        f"control character U+{ord(match.group()):04X} is not allowed in a project file",
        "is this a binary file?",
    )


class _TreeBuilder:
    """Turns lark's parse tree into :mod:`corral.lang.tree` statements for one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.sink = DiagnosticSink()

    def items(
        self, children: Sequence[Tree[Token] | Token], depth: int
    ) -> tuple[Statement, ...]:
        statements: list[Statement] = []
        for child in children:
            if not isinstance(child, Tree):
                continue
            statement = self.item(child, depth)
            if statement is not None:
                statements.append(statement)
        return tuple(statements)

    def item(self, node: Tree[Token], depth: int) -> Statement | None:
        if node.data == "include":
            token = node.children[0]
            if not isinstance(token, Token):
                raise TypeError(f"include node holds {token!r}, not a token")
            return self.include(token)
        words = [self.word(token) for token in node.children if isinstance(token, Token)]
        key, values = words[0], self.values(words)
        if node.data == "statement":
            return Statement(key=key, values=values)
        if depth >= MAX_NESTING:
            self.sink.error(key.span, f"blocks are nested more than {MAX_NESTING} deep")
            return None
        blocks = [child for child in node.children if isinstance(child, Tree)]
        return Statement(key=key, values=values, block=self.items(blocks, depth + 1))

    def values(self, words: list[Word]) -> tuple[Word, ...]:
        """The words after the key, without a ``key = value`` separator."""
        if len(words) >= 2 and _is_separator(words[1]):
            if len(words) == 2:
                self.sink.error(words[1].span, f"missing value after '=' for '{words[0].text}'")
            return tuple(words[2:])
        return tuple(words[1:])

    def word(self, token: Token) -> Word:
        span = Span(self.file, *_position(token))
        if token.type == "DQSTRING":
            return QuotedWord(_unescape(token.value[1:-1]), span)
        if token.type == "SQSTRING":
            return QuotedWord(token.value[1:-1], span, literal=True)
        return Word(token.value, span)

    def include(self, token: Token) -> Statement:
        line, column = _position(token)
        key = Word(INCLUDE_KEY, Span(self.file, line, column))
        rest = token.value[len(INCLUDE_KEY) :]
        path_text = rest.lstrip(" \t")
        if not path_text:
            self.sink.error(key.span, "#include needs a file name", "write: #include FILE")
            return Statement(key=key)
        span = Span(self.file, line, column + len(INCLUDE_KEY) + len(rest) - len(path_text))
        if path_text[0] == '"':
            path: Word = QuotedWord(_unescape(path_text[1:-1]), span)
        elif path_text[0] == "'":
            path = QuotedWord(path_text[1:-1], span, literal=True)
        else:
            path = Word(path_text, span)
        return Statement(key=key, values=(path,))


def _position(token: Token) -> tuple[int, int]:
    """Line and column of a token; lark's lexer sets both on every token it makes."""
    if token.line is None or token.column is None:
        raise ValueError(f"token {token.type} {token.value!r} has no position")
    return token.line, token.column


def _is_separator(word: Word) -> bool:
    return word.text == "=" and not isinstance(word, QuotedWord)


def _unescape(body: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _describe(error: UnexpectedInput, text: str, file: str) -> Diagnostic:
    """One clear sentence for a lark syntax error, at the place lark stopped."""
    if isinstance(error, UnexpectedCharacters):
        span = Span(file, max(error.line, 1), max(error.column, 1))
        # lark declares pos_in_stream as None on the base class; this subclass always
        # sets it to the lexer's offset.
        pos = cast(int, error.pos_in_stream)
        char = text[pos] if pos < len(text) else ""
        if char in "\"'":
            return Diagnostic(span, f"unterminated string: {char} must be closed on the same line")
        return Diagnostic(span, f"unexpected character {char!r}")
    if isinstance(error, UnexpectedEOF) or (
        isinstance(error, UnexpectedToken) and error.token.type == "$END"
    ):
        return _unclosed_block(text, file)
    assert isinstance(error, UnexpectedToken)
    token = error.token
    span = Span(file, max(token.line or 1, 1), max(token.column or 1, 1))
    if token.type == "RBRACE":
        return Diagnostic(span, "unexpected '}': no block is open here")
    if token.type == "LBRACE":
        line_start = text.rfind("\n", 0, token.start_pos) + 1
        alone = not text[line_start : token.start_pos].strip()
        hint = "put '{' on the same line as its key" if alone and line_start > 0 else None
        return Diagnostic(span, "'{' must follow a key, as in 'host NAME {'", hint)
    return Diagnostic(span, f"unexpected {token.value!r}")


def _unclosed_block(text: str, file: str) -> Diagnostic:
    """Point at the end of the file and name the block that was left open."""
    end_line = text.count("\n") + 1
    end_column = len(text) - (text.rfind("\n") + 1) + 1
    opened = _innermost_open_brace(text)
    hint = f"the block opened at {file}:{opened[0]}:{opened[1]} is not closed" if opened else None
    return Diagnostic(Span(file, end_line, end_column), "unexpected end of file: missing '}'", hint)


def _innermost_open_brace(text: str) -> tuple[int, int] | None:
    """Line and column of the last '{' still open at the end of ``text``."""
    stack: list[tuple[int, int]] = []
    try:
        for token in grammar().lex(text):
            if token.type == "LBRACE":
                stack.append(_position(token))
            elif token.type == "RBRACE" and stack:
                stack.pop()
    except UnexpectedInput:
        return None
    return stack[-1] if stack else None

"""Expand a parsed tree: splice ``#include`` files and substitute ``$variables``.

Both encodings (block language and YAML) go through this one stage, so the
rules are the same for both:

* ``#include PATH`` (an ``#include`` statement from the parser, or ``include:``
  in YAML) is replaced by the statements of PATH, wherever it stands: at the
  top level or inside any block. A relative PATH is relative to the directory
  of the file that holds the ``#include``. A file that includes itself,
  directly or through others, is an error at the ``#include``.
* ``$name = value`` (or ``$name value``) at the top level or directly in
  ``global`` — also when those lines come from an included file — defines a
  variable and is removed from the tree. Inside any other block a ``$name``
  key is an ordinary use of the variable.
* A variable is visible from its definition onward, in file order through
  includes (MLN Listing 4 defines ``$gnum`` in ``global``, then includes the
  file that uses it). ``$name`` as a whole word is replaced by its value words;
  ``$[name]`` inside a word (``os$[gnum]``) by its value text. A ``$``
  followed by anything else (``$6$salt$hash``) is literal, and so is a
  'single-quoted' word. Values come only from the project files, never from
  the process environment, so a file means the same on every machine.
  Inside ``runcmd`` (its values and its block) ``$$`` stands for one ``$``
  that reaches the guest's shell untouched: ``echo $$HOME`` runs
  ``echo $HOME``. An undefined ``$NAME`` there is reported with that hint.
* Quoting survives expansion: a quoted word stays a
  :class:`~corral.lang.parser.QuotedWord` (later stages, such as ``runcmd``,
  need to know that it was written as exactly one word), and the words a
  ``$name`` stands for keep the quoting of the variable's value.

A substituted word keeps the position of the word it replaced (the use), so a
later error about a bad value points at the line that used it.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from corral.errors import Diagnostic, DiagnosticSink, SourceErrors, Span
from corral.lang.parser import INCLUDE_KEY, QuotedWord
from corral.lang.tree import Document, Statement, Word

IncludeLoader = Callable[[Path], Document]
"""Parses one included file; raises SourceErrors for bad content, OSError if unreadable."""

MAX_INCLUDES = 10_000
"""Most ``#include`` splices one project may perform, against include explosions."""

_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_WHOLE_WORD = re.compile(rf"\$({_NAME})")
_INNER = re.compile(r"\$\[([^\]]*)\]")
_VALID_NAME = re.compile(_NAME)
_DEFINE_WHERE = "define it before use, at the top level or in global: $name = value"
SHELL_KEY = "runcmd"
"""The key whose words go to the guest's shell, where ``$$`` stands for one ``$``."""
_MASK = "\x00\x00"  # stands for "$$" while substituting: the parser refuses NUL in files


@dataclass(frozen=True, slots=True)
class _Scope:
    """Where a list of statements stands: what it may define, which files led to it."""

    top_level: bool
    definitions_allowed: bool
    chain: tuple[str, ...]
    shell: bool = False  # inside runcmd, where "$$" is the guest shell's "$"


def expand(document: Document, load_include: IncludeLoader) -> Document:
    """Return ``document`` with includes spliced and variables substituted.

    Raises :class:`SourceErrors` with every problem found (missing or cyclic
    includes, errors inside included files, undefined variables).
    """
    expander = _Expander(load_include)
    scope = _Scope(top_level=True, definitions_allowed=True, chain=(_real(document.path),))
    statements = expander.statements(document.statements, scope)
    expander.sink.raise_if_any()
    return Document(path=document.path, statements=tuple(statements))


def _real(path: str) -> str:
    return os.path.realpath(path)


class _Expander:
    """Walks statements in file order, carrying the variables defined so far."""

    def __init__(self, load_include: IncludeLoader) -> None:
        self.load_include = load_include
        self.sink = DiagnosticSink()
        self.variables: dict[str, tuple[Word, ...]] = {}
        self.loaded: dict[str, Document | None] = {}
        self.include_count = 0
        self.shell = False  # expanding runcmd words: "$$" is one "$" for the guest's shell

    def statements(self, statements: tuple[Statement, ...], scope: _Scope) -> list[Statement]:
        result: list[Statement] = []
        for statement in statements:
            if _is_include(statement):
                result.extend(self.include(statement, scope))
            elif scope.definitions_allowed and _defined_name(statement) is not None:
                self.define(statement)
            else:
                result.append(self.statement(statement, scope))
        return result

    def statement(self, statement: Statement, scope: _Scope) -> Statement:
        if statement.block is None and _is_plain(statement):
            return statement  # nothing to substitute: most statements of a big project
        shell = scope.shell or statement.key.text == SHELL_KEY
        self.shell = shell
        words = self.words(statement.key)
        for value in statement.values:
            words.extend(self.words(value))
        if not words:  # a key that was a variable with an empty value
            words = [statement.key]
        key, values = words[0], tuple(words[1:])
        if statement.block is None:
            return Statement(key=key, values=values)
        inner = _Scope(
            top_level=False,
            definitions_allowed=scope.top_level and key.text == "global",
            chain=scope.chain,
            shell=shell,
        )
        return Statement(
            key=key, values=values, block=tuple(self.statements(statement.block, inner))
        )

    def define(self, statement: Statement) -> None:
        name = statement.key.text[1:]
        if statement.block is not None:
            self.sink.error(statement.key.span, f"variable '${name}' cannot have a block as value")
            return
        if not statement.values:
            self.sink.error(
                statement.key.span,
                f"variable '${name}' has no value",
                f"write: ${name} = VALUE",
            )
            return
        self.shell = False
        value: list[Word] = []
        for word in statement.values:
            value.extend(self.words(word))
        self.variables[name] = tuple(value)

    def include(self, statement: Statement, scope: _Scope) -> list[Statement]:
        if not statement.values:
            return []  # the parser already reported the missing file name
        self.shell = scope.shell
        words = self.words(statement.values[0])
        if len(words) != 1:
            self.sink.error(statement.key.span, "#include needs exactly one file name")
            return []
        target = Path(statement.key.span.file).parent / words[0].text
        real = _real(str(target))
        if real in scope.chain:
            cycle = " -> ".join(_short(path) for path in (*scope.chain, real))
            self.sink.error(statement.key.span, f"include cycle: {cycle}")
            return []
        self.include_count += 1
        if self.include_count > MAX_INCLUDES:
            if self.include_count == MAX_INCLUDES + 1:
                self.sink.error(statement.key.span, f"more than {MAX_INCLUDES} includes")
            return []
        document = self.load(real, target, statement.key.span)
        if document is None:
            return []
        inner = _Scope(
            scope.top_level, scope.definitions_allowed, (*scope.chain, real), scope.shell
        )
        return self.statements(document.statements, inner)

    def load(self, real: str, target: Path, at: Span) -> Document | None:
        """Parse an included file once per project; report its problems once."""
        if real in self.loaded:
            return self.loaded[real]
        document: Document | None = None
        try:
            document = self.load_include(target)
        except SourceErrors as errors:
            self.sink.items.extend(errors.diagnostics)
        except (OSError, ValueError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            self.sink.error(at, f"cannot read included file '{target}': {reason}")
        self.loaded[real] = document
        return document

    def words(self, word: Word) -> list[Word]:
        """The words ``word`` stands for once variables are substituted."""
        if "$" not in word.text:
            return [word]
        if isinstance(word, QuotedWord) and word.literal:
            return [word]
        # In runcmd "$$" is one "$" for the guest's shell; the mask keeps offsets.
        text = word.text.replace("$$", _MASK) if self.shell else word.text
        whole = _WHOLE_WORD.fullmatch(text)
        if whole is not None:
            value = self.lookup(whole.group(1), _offset(word, 0))
            if value is None:
                return [word]
            return [_moved(part, word.span) for part in value]
        if "$[" in text:
            text = self.substitute_inner(word, text)
        text = text.replace(_MASK, "$")
        if text == word.text:
            return [word]
        if isinstance(word, QuotedWord):
            return [QuotedWord(text, word.span)]
        return [Word(text, word.span)]

    def substitute_inner(self, word: Word, text: str) -> str:
        """``text`` (``word``'s, maybe masked) with every ``$[name]`` replaced."""

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if _VALID_NAME.fullmatch(name) is None:
                self.sink.error(_offset(word, match.start()), f"invalid variable name '{name}'")
                return match.group(0)
            value = self.lookup(name, _offset(word, match.start()))
            if value is None:
                return match.group(0)
            return " ".join(part.text for part in value)

        result = _INNER.sub(replace, text)
        unclosed = text.find("$[", _last_inner_end(text))
        if unclosed >= 0:
            self.sink.error(_offset(word, unclosed), "unclosed '$[': write $[name]")
        return result

    def lookup(self, name: str, span: Span) -> tuple[Word, ...] | None:
        value = self.variables.get(name)
        if value is None:
            close = difflib.get_close_matches(name, list(self.variables), n=1)
            hint = f"did you mean '${close[0]}'?" if close else _DEFINE_WHERE
            if self.shell:
                hint = f"{hint}; for the guest shell's variable write $${name}"
            self.sink.items.append(Diagnostic(span, f"undefined variable '${name}'", hint))
        return value


def _is_include(statement: Statement) -> bool:
    return statement.key.text == INCLUDE_KEY and not isinstance(statement.key, QuotedWord)


def _is_plain(statement: Statement) -> bool:
    """True when no word of the statement is quoted or holds a ``$``."""
    return all(
        type(word) is Word and "$" not in word.text for word in (statement.key, *statement.values)
    )


def _defined_name(statement: Statement) -> str | None:
    """``name`` when the statement is ``$name [=] value``, written unquoted."""
    key = statement.key
    if isinstance(key, QuotedWord):
        return None
    match = _WHOLE_WORD.fullmatch(key.text)
    return match.group(1) if match else None


def _moved(word: Word, span: Span) -> Word:
    """``word`` (a variable's value) at the place that uses it, its quoting kept."""
    if isinstance(word, QuotedWord):
        return QuotedWord(word.text, span, literal=word.literal)
    return Word(word.text, span)


def _offset(word: Word, index: int) -> Span:
    """Position of character ``index`` of the word (after the quote of a quoted word)."""
    shift = index + (1 if isinstance(word, QuotedWord) else 0)
    return Span(word.span.file, word.span.line, word.span.column + shift)


def _last_inner_end(text: str) -> int:
    end = 0
    for match in _INNER.finditer(text):
        end = match.end()
    return end


def _short(path: str) -> str:
    return os.path.basename(path)

"""A vmgen INI file read with :mod:`configparser`, each section and key with its line.

vmgCtl edits these files by rewriting them through Python's ``ConfigParser``,
so the values are whatever ``ConfigParser`` reads: keys lower-cased, ``=`` or
``:`` between key and value, ``;``/``#`` comment lines, values continued on
deeper-indented lines, a ``[DEFAULT]`` section whose keys every section sees.
``ConfigParser`` does not say where anything was written, so a short scan of
the same lines, classified with ``ConfigParser``'s own patterns, records the
line of every section header and key; that scan is also what refuses a
malformed line or a repeated section with its line and column, which
``ConfigParser`` would report only as an exception text.
"""

from __future__ import annotations

import configparser
import re
import sys
from dataclasses import dataclass, field

from corral.convert.result import Warnings
from corral.errors import SourceErrors, Span

DEFAULT_SECTION = configparser.DEFAULTSECT
COMMENT_PREFIXES = ("#", ";")
# What ConfigParser takes as an inline comment: a prefix at the start of the
# line or after white space.
_INLINE_COMMENT = re.compile(r"(?:^|(?<=\s))[#;]")


@dataclass(frozen=True, slots=True)
class Entry:
    """One key of a section: its value as ConfigParser reads it, and its line."""

    key: str
    value: str
    line: int


@dataclass(slots=True)
class Section:
    """A section as written: its name in brackets, header position, own keys."""

    name: str
    line: int
    column: int
    entries: dict[str, Entry] = field(default_factory=dict)


@dataclass(slots=True)
class Ini:
    """The sections of the file in source order, and the keys of ``[DEFAULT]``."""

    sections: list[Section]
    defaults: dict[str, Entry]


@dataclass(slots=True)
class _Layout:
    """Where the scan found each section header and key (``(section, key)``: lines)."""

    headers: dict[str, tuple[int, int]] = field(default_factory=dict)
    keys: dict[tuple[str, str], list[int]] = field(default_factory=dict)


def parser() -> configparser.ConfigParser:
    """The parser vmgen files are read with: values as written (no ``%``
    interpolation, so a password may hold ``%``), inline comments after white
    space, a blank line ending a continued value, a repeated key not fatal (the
    scan warns about it; the later value wins)."""
    return configparser.ConfigParser(
        interpolation=None, strict=False, empty_lines_in_values=False,
        comment_prefixes=COMMENT_PREFIXES, inline_comment_prefixes=COMMENT_PREFIXES)


def headers(text: str) -> list[str]:
    """The names of the section headers of ``text``, in order (for detection: no
    error is raised for what is not a header)."""
    found = []
    for raw in text.splitlines():
        match = configparser.ConfigParser.SECTCRE.match(_content(raw))
        if match is not None:
            found.append(match["header"])
    return found


def read(text: str, file: str, warnings: Warnings) -> Ini:
    """The sections of ``text``; a malformed line or a repeated section is one
    ``FILE:LINE:COL`` error, a repeated key a warning."""
    lines = text.splitlines()
    layout = _scan(lines, file)
    config = parser()
    try:
        config.read_file(lines, source=file)
    except configparser.Error as error:  # the scan refuses the same lines first
        line = getattr(error, "lineno", None) or 1
        raise SourceErrors.single(Span(file, line, 1), f"not a vmgen INI file: {error}") from None
    for (section, key), at in layout.keys.items():
        for again in at[1:]:
            warnings.add(again, f"key {key} of [{section}] is given again (first at line "
                         f"{at[0]}): the later value wins")
    defaults = {key: Entry(key, value, layout.keys[(DEFAULT_SECTION, key)][-1])
                for key, value in config.defaults().items()}
    sections: list[Section] = []
    for name, (line, column) in layout.headers.items():
        if name == DEFAULT_SECTION:
            continue
        found = Section(name, line, column)
        for (owner, key), at in layout.keys.items():
            if owner == name and config.has_option(name, key):
                found.entries[key] = Entry(key, config.get(name, key), at[-1])
        sections.append(found)
    return Ini(sections, defaults)


def _content(raw: str) -> str:
    """A line without its comment, stripped ("" for a blank or comment line)."""
    if raw.strip().startswith(COMMENT_PREFIXES):
        return ""
    match = _INLINE_COMMENT.search(raw)
    return (raw[: match.start()] if match else raw).strip()


def _scan(lines: list[str], file: str) -> _Layout:
    """The lines of section headers and keys, classified as ConfigParser's reading
    loop does: a line indented deeper than the key above it continues that key's
    value; a blank line ends it."""
    layout = _Layout()
    section: str | None = None
    key: str | None = None
    indent_level = 0
    for number, raw in enumerate(lines, start=1):
        content = _content(raw)
        if not content:
            indent_level = sys.maxsize
            continue
        indent = len(raw) - len(raw.lstrip())
        if section is not None and key is not None and indent > indent_level:
            continue
        indent_level = indent
        header = configparser.ConfigParser.SECTCRE.match(content)
        if header is not None:
            section, key = header["header"], None
            if section in layout.headers:
                first = layout.headers[section][0]
                raise SourceErrors.single(
                    Span(file, number, indent + 1), f"section [{section}] is given again "
                    f"(first at line {first})", hint="merge the two sections into one")
            layout.headers[section] = (number, indent + 1)
            continue
        option = configparser.ConfigParser.OPTCRE.match(content)
        if section is None:
            raise SourceErrors.single(
                Span(file, number, indent + 1), "a key before any section",
                hint="a vmgen file starts with a section header such as [machine]")
        if option is None or not option["option"].strip():
            raise SourceErrors.single(
                Span(file, number, indent + 1), "neither a section header, a 'key = value' "
                "line nor a comment", hint="comment lines start with # or ;")
        key = option["option"].rstrip().lower()
        layout.keys.setdefault((section, key), []).append(number)
    return layout

"""Setting one key of one host in a project file's text, keeping the rest as written.

``corral vm migrate`` records the new service host in the file the project
came from. Comments, layout, order and every other byte stay: the value word
is replaced where the host's own block states the key, or one statement is
added to the block when it does not. Where the value comes from elsewhere (a
superclass, a variable, a plugin such as ``autoenum``, a YAML file) an edit
would be a guess, so none is made and the result says which line to change.
The text is changed by the same code as ``corral set`` (:mod:`corral.lang.rewrite`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from corral.errors import SourceErrors
from corral.lang.layout import by_position, placed_statements
from corral.lang.parser import parse_text
from corral.lang.rewrite import NewStatement, indent_unit, insert, replace_values
from corral.lang.tree import Statement


@dataclass(frozen=True, slots=True)
class KeyEdit:
    """The edited text (None when no safe edit exists) and what to tell the user:
    the change made, or the change to make by hand, as ``FILE:LINE: ...``."""

    text: str | None
    line: int
    instruction: str


def set_host_key(
    text: str,
    file: str,
    host: str,
    key: str,
    value: str,
    *,
    at: tuple[int, int],
    current: str,
    default: str | None,
) -> KeyEdit:
    """Make host ``host`` (its block starting at line/column ``at``) say ``key value``.

    ``current`` is the value the host resolves to now and ``default`` the one
    it gets when nothing states the key (the site's default): a host whose
    block and superclasses are silent but whose value is not the default got
    it from a plugin, and is left for a person to change.
    """
    line = at[0]
    by_hand = f"{file}:{line}: set `{key} {value}` in host {host}"
    if file.endswith((".yaml", ".yml")):
        return KeyEdit(None, line, f"{by_hand} (YAML files are not edited)")
    try:
        document = parse_text(text, file)
    except SourceErrors as errors:
        return KeyEdit(None, line, f"{by_hand} (the file does not parse: {errors.message})")
    stanza = _find_block(document.statements, "host", host, at)
    if stanza is None:
        return KeyEdit(None, line, f"{by_hand} (no `host {host}` block starts there: the "
                       "host is made by a plugin or written elsewhere)")
    own = [s for s in stanza.block or () if s.key.text == key]
    if len(own) == 1 and len(own[0].values) == 1 and "$" not in own[0].values[0].text:
        return _replace(text, file, own[0], key, value)
    if own:
        where = own[-1].span
        return KeyEdit(None, where.line, f"{file}:{where.line}: change it to `{key} {value}` "
                       f"(host {host} states {key} in a way not edited automatically)")
    inherited = _from_group(document.statements, host, key)
    source = "a group"
    if inherited is None:
        inherited, source = _inherited(document.statements, stanza, key), "a superclass"
    if inherited is not None:
        where = inherited.span
        return KeyEdit(None, line, f"{by_hand}, or change {file}:{where.line} (host {host} "
                       f"inherits `{key}` from {source} there, as other hosts may)")
    if default is not None and current != default:
        return KeyEdit(None, line, f"{by_hand} (its {key} {current} comes from a plugin or "
                       "an include; change it where it is set)")
    return _insert(text, file, stanza, key, value)


def _find_block(
    statements: Sequence[Statement], key: str, label: str, at: tuple[int, int]
) -> Statement | None:
    for statement in _walk(statements):
        if (
            statement.is_block and statement.key.text == key and statement.label == label
            and (statement.span.line, statement.span.column) == at
        ):
            return statement
    return None


def _walk(statements: Sequence[Statement]) -> Iterator[Statement]:
    for statement in statements:
        yield statement
        if statement.block:
            yield from _walk(statement.block)


def _from_group(statements: Sequence[Statement], host: str, key: str) -> Statement | None:
    """The statement of ``key`` in the last group naming ``host`` among its members
    that states it: a group's settings win over the host's superclasses, and a
    later group's over an earlier one's."""
    found = None
    for group in statements:
        if not (group.is_block and group.key.text == "group"):
            continue
        block = group.block or ()
        if not any(s.key.text == "members" and host in (w.text for w in s.values)
                   for s in block):
            continue
        found = next((s for s in block if s.key.text == key), found)
    return found


def _inherited(
    statements: Sequence[Statement], stanza: Statement, key: str
) -> Statement | None:
    """The statement of ``key`` in a superclass ``stanza`` inherits from, if any."""
    classes = {
        s.label: s for s in statements
        if s.is_block and s.key.text == "superclass" and s.label is not None
    }
    pending = [s.values[0].text for s in stanza.block or ()
               if s.key.text == "superclass" and s.values]
    seen: set[str] = set()
    while pending:
        name = pending.pop(0)
        if name in seen or name not in classes:
            continue
        seen.add(name)
        block = classes[name].block or ()
        for statement in block:
            if statement.key.text == key:
                return statement
        pending += [s.values[0].text for s in block if s.key.text == "superclass" and s.values]
    return None


def _replace(text: str, file: str, statement: Statement, key: str, value: str) -> KeyEdit:
    word = statement.values[0]
    placed = by_position(placed_statements(text)).get((statement.span.line,
                                                       statement.span.column))
    if placed is None or len(placed.values) != 1:
        return KeyEdit(None, word.span.line, f"{file}:{word.span.line}: change it to "
                       f"`{key} {value}`")
    edited = replace_values(text, placed, [value])
    return KeyEdit(edited, word.span.line, f"{file}:{word.span.line}: {key} "
                   f"{word.text} -> {value}")


def _insert(text: str, file: str, stanza: Statement, key: str, value: str) -> KeyEdit:
    """Add ``key value`` as the block's first statement, on a line of its own
    indented like the block's statements, or inline in a one-line block."""
    placed = placed_statements(text)
    block = by_position(placed).get((stanza.span.line, stanza.span.column))
    if block is None or block.children is None:
        line = stanza.span.line
        return KeyEdit(None, line, f"{file}:{line}: set `{key} {value}` in host "
                       f"{stanza.label}")
    edited, line = insert(text, block, NewStatement((key, value)), indent_unit(text, placed),
                          position="first")
    return KeyEdit(edited, line, f"{file}:{line}: added `{key} {value}`")


def set_project_name(text: str, file: str, name: str) -> KeyEdit:
    """Make the project file ``text`` say ``project NAME`` in its ``global`` stanza
    (``corral import --as``), changing that one word; None text (with the line
    to change by hand) when the name is not stated there as one plain word."""
    by_hand = f"{file}: set `project {name}` in the global stanza"
    if file.endswith((".yaml", ".yml")):
        return KeyEdit(None, 1, f"{by_hand} (YAML files are not edited)")
    try:
        document = parse_text(text, file)
    except SourceErrors as errors:
        return KeyEdit(None, 1, f"{by_hand} (the file does not parse: {errors.message})")
    stated = [
        s for g in document.statements if g.is_block and g.key.text == "global"
        for s in g.block or () if s.key.text == "project"
    ]
    if len(stated) != 1:
        return KeyEdit(None, 1, f"{by_hand} (it states the project name "
                       f"{'nowhere' if not stated else 'more than once'} in this file)")
    values = stated[0].values
    if len(values) != 1 or "$" in values[0].text:
        line = stated[0].span.line
        return KeyEdit(None, line, f"{file}:{line}: change it to `project {name}`")
    return _replace(text, file, stated[0], "project", name)

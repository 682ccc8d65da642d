"""LCFG resource lines (``!xen.KEY mSET(VALUE)``) read into values with their lines.

LCFG profiles set a component's resources with mutations: ``mSET`` replaces
a value, ``mADD`` appends words to a list, ``mCONCATQ`` appends a quoted
string, ``mREMOVE`` takes words out. Spaces before the parenthesis are
allowed, as profiles print them both ways. Only the ``xen`` component is
read; what is not a resource line is a warning, never an error, since a
profile holds much more than one component.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from corral.convert.result import Warnings

COMPONENT = "xen"
_MUTATION = re.compile(
    r"^!?(?P<component>[A-Za-z][\w-]*)\.(?P<key>[A-Za-z0-9_]+)\s*"
    r"(?P<op>m[A-Z]+)\s*\((?P<value>.*)\)\s*$")
_PLAIN = re.compile(r"^(?P<component>[A-Za-z][\w-]*)\.(?P<key>[A-Za-z0-9_]+)\s+(?P<value>.*)$")
_RANGE = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")


@dataclass(slots=True)
class Resource:
    """A resource's value: its words (each with the line that added it) and text."""

    text: str
    line: int
    words: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class Resources:
    """Every ``xen`` resource of the file, and which ones the converter read."""

    values: dict[str, Resource] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    def text(self, key: str) -> Resource | None:
        self.used.add(key)
        return self.values.get(key)

    def words(self, key: str) -> list[tuple[str, int]]:
        self.used.add(key)
        found = self.values.get(key)
        return list(found.words) if found is not None else []

    def line(self, key: str) -> int:
        found = self.values.get(key)
        return found.line if found is not None else 1


def looks_like(text: str) -> bool:
    """An LCFG profile of the xen component: a ``xen.KEY`` mutation line."""
    return any(_MUTATION.match(line.strip()) and line.strip().lstrip("!").startswith("xen.")
               for line in text.splitlines())


def read(text: str, warnings: Warnings) -> Resources:
    resources = Resources()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("//", "/*", "*")):
            continue
        if line.startswith("#"):
            if line.split()[0] in ("#include", "#define", "#ifdef", "#ifndef", "#if"):
                warnings.add(number, f"preprocessor line {line.split()[0]} is not followed")
            continue
        if line == "(...)":
            warnings.add(number, "elided text (...) is not carried over")
            continue
        match = _MUTATION.match(line)
        if match is None:
            plain = _PLAIN.match(line)
            if plain is None:
                warnings.add(number, "not an LCFG resource line: not carried over")
                continue
            component, key, op, value = (plain["component"], plain["key"], "mSET",
                                         plain["value"])
        else:
            component, key, op, value = (match["component"], match["key"], match["op"],
                                         match["value"])
        if component != COMPONENT:
            warnings.add(number, f"resource of component {component} is not carried over")
            continue
        _mutate(resources, key, op, value.strip(), number, warnings)
    return resources


def _mutate(resources: Resources, key: str, op: str, value: str, number: int,
            warnings: Warnings) -> None:
    current = resources.values.get(key)
    if op == "mSET":
        if current is not None and current.text != value:
            warnings.add(number, f"{key} is set again (it was {current.text!r} at line "
                         f"{current.line}): the later value wins")
        resources.values[key] = Resource(value, number, _words(value, number, warnings))
    elif op == "mADD":
        if current is None:
            current = resources.values[key] = Resource("", number)
        current.words.extend(_words(value, number, warnings))
        current.text = " ".join(w for w, _ in current.words)
    elif op == "mCONCATQ":
        piece = _unquoted(value)
        if current is None:
            current = resources.values[key] = Resource("", number)
        current.text += piece
        current.words = [(w, number) for w in current.text.split()]
    elif op == "mREMOVE":
        if current is not None:
            gone = set(value.split())
            current.words = [(w, n) for w, n in current.words if w not in gone]
            current.text = " ".join(w for w, _ in current.words)
    else:
        warnings.add(number, f"mutation {op} of {key} is not understood: not carried over")


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _words(value: str, number: int, warnings: Warnings) -> list[tuple[str, int]]:
    """The words of a list value; ``a1 ... a8`` (as a profile abbreviates a run of
    numbered names) is the whole run, anything else around ``...`` is warned."""
    words = _unquoted(value).split()
    out: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "..." and out and index + 1 < len(words):
            run = _run(out[-1], words[index + 1])
            if run is None:
                warnings.add(number, f"cannot expand '{out[-1]} ... {words[index + 1]}': "
                             "the '...' is not carried over")
            else:
                out.extend(run)
            index += 1
            continue
        if word == "...":
            warnings.add(number, "a '...' without names on both sides is not carried over")
        else:
            out.append(word)
        index += 1
    return [(w, number) for w in out]


def _run(first: str, last: str) -> list[str] | None:
    """The names strictly between ``first`` and ``last`` when both are PREFIX+number."""
    a, b = _RANGE.match(first), _RANGE.match(last)
    if a is None or b is None or a["prefix"] != b["prefix"]:
        return None
    start, end = int(a["number"]), int(b["number"])
    if end <= start or end - start > 4096:
        return None
    return [f"{a['prefix']}{n}" for n in range(start + 1, end)]

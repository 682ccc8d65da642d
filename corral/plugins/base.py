"""The plugin interface.

A plugin is named by a block in the ``global`` stanza (``autoenum { ... }``,
``apache { ... }``) and may be refined by a block of the same name in a host,
merged over the global one the way superclasses merge (the host wins). It can
act at two points of the pipeline:

* :meth:`Plugin.expand` runs on the whole tree before superclasses are
  resolved, and may add or change stanzas: a *generator* such as ``autoenum``.
* :meth:`Plugin.apply` runs once per host after the host is built, with the
  merged settings, and returns the host fields it changes: ``sshkey`` adds
  keys, ``files`` adds files.

Plugins report problems through the context's sink with the span of the word
at fault, never by raising or printing, so every problem in a file is listed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from corral.errors import DiagnosticSink
from corral.lang.resolve import MergePolicy
from corral.lang.tree import Document, Statement, Word
from corral.model.project import Host


@dataclass(frozen=True, slots=True)
class ExpandContext:
    """What a generator may use: the merge rule, a superclass lookup, the sink."""

    policy: MergePolicy
    sink: DiagnosticSink
    superclass_body: Callable[[str], tuple[Statement, ...] | None]


@dataclass(frozen=True, slots=True)
class ApplyContext:
    """What a per-host plugin may use: the project name, the sink, and whether the
    project may read files of this machine (not one sent to the server as text)."""

    project: str
    sink: DiagnosticSink
    local_files: bool = True


class Plugin:
    """Base of every plugin; subclasses override :meth:`expand`, :meth:`apply` or both."""

    name: ClassVar[str]
    claims: ClassVar[frozenset[str]] = frozenset()
    """Host-level keys this plugin accepts (usually its own block name)."""

    def expand(self, document: Document, settings: Statement, context: ExpandContext) -> Document:
        """Return the tree with generated stanzas; the default changes nothing."""
        return document

    def apply(
        self, host: Host, settings: tuple[Statement, ...], context: ApplyContext
    ) -> Mapping[str, Any]:
        """Host fields to replace, from the merged global+host settings; default none."""
        return {}

    @property
    def applies_per_host(self) -> bool:
        return type(self).apply is not Plugin.apply


def settings_data(statements: tuple[Statement, ...]) -> dict[str, Any]:
    """Plain data of a settings block, as recorded in ``Host.plugins`` (and so in JSON).

    ``doc_root /var/www`` -> ``{"doc_root": "/var/www"}``; a flag -> True; a
    block -> a nested dict, under ``"key label"`` when it has a label.
    """
    data: dict[str, Any] = {}
    for statement in statements:
        key = statement.key.text
        if statement.block is not None:
            if statement.label:
                key = f"{key} {statement.label}"
            data[key] = settings_data(statement.block)
        elif not statement.values:
            data[key] = True
        else:
            data[key] = " ".join(word.text for word in statement.values)
    return data


def local_file(word: Word, context: ApplyContext, what: str) -> Path | None:
    """The file of this machine a word names, or None (with an error at the word)
    when the project came as text to the server: a user of the server must never
    read the server's files through a project (``files { source /etc/shadow }``)."""
    if not context.local_files:
        context.sink.error(word.span, f"{what}: a project sent to the server cannot read "
                           f"files of the server's machine ({word.text}); write the content "
                           "in the project")
        return None
    return relative_to_source(word)


def relative_to_source(word: Word) -> Path:
    """A path written in a project file, relative to the file that holds the word."""
    path = Path(word.text).expanduser()
    return path if path.is_absolute() else Path(word.span.file).parent / path

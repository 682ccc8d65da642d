"""Load a project file into the typed model: the whole front half of the pipeline.

    load_document  (parse, #include, $variables)      corral.lang.load
    -> expand_plugins (generators such as autoenum)    this module
    -> resolve_document (stanzas, superclasses)        corral.lang.resolve
    -> build_project (typed, checked, MACs, plugins)   corral.model.build

Every stage collects all its problems; they surface as one
:class:`~corral.errors.SourceErrors`, each naming ``file:line:column``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from corral.config import SiteConfig
from corral.errors import Diagnostic, DiagnosticSink, SourceErrors
from corral.lang.load import load_document
from corral.lang.resolve import resolve_document, superclass_lookup
from corral.lang.tree import Document
from corral.model.build import build_project
from corral.model.project import Project
from corral.model.schema import MERGE_POLICY
from corral.plugins.base import ExpandContext
from corral.plugins.registry import PluginRegistry


def load_project(
    path: Path,
    site: SiteConfig | None = None,
    plugins: PluginRegistry | None = None,
    text: str | None = None,
) -> Project:
    """The resolved, validated project of ``path`` (or of ``text`` as if read from it).

    ``site`` defaults to the built-in site defaults (the caller chooses whether
    to look up ``corral.toml``: see :func:`corral.config.load_site_config`);
    ``plugins`` to those installed in the ``corral.plugins`` entry-point group.
    """
    site = site if site is not None else SiteConfig()
    plugins = plugins if plugins is not None else PluginRegistry.from_entry_points()
    with _without_cyclic_gc():
        document = load_document(Path(path), text)
        return model_of(document, site, plugins)


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a project loads.

    Loading builds hundreds of thousands of small acyclic objects (words,
    spans, statements); the collector would rescan them all again and again
    and more than double the load time of a 10,000-host project. Reference
    counting still frees everything; the previous state is restored after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def model_of(
    document: Document, site: SiteConfig, plugins: PluginRegistry, *, local_files: bool = True
) -> Project:
    """Expand plugins, resolve and build an already loaded document (``local_files``:
    see :func:`~corral.model.build.build_project`)."""
    sink = DiagnosticSink()
    document = expand_plugins(document, plugins, sink)
    try:
        tree = resolve_document(document, MERGE_POLICY)
    except SourceErrors as errors:
        raise SourceErrors(_unique([*sink.items, *errors.diagnostics])) from None
    try:
        project = build_project(tree, site, plugins, local_files=local_files)
    except SourceErrors as errors:
        raise SourceErrors(_unique([*sink.items, *errors.diagnostics])) from None
    if sink.items:
        raise SourceErrors(_unique(sink.items))
    return project


def expand_plugins(document: Document, plugins: PluginRegistry, sink: DiagnosticSink) -> Document:
    """Run the generator plugins named by blocks in ``global``, in file order."""
    context = ExpandContext(
        policy=MERGE_POLICY, sink=sink, superclass_body=superclass_lookup(document, MERGE_POLICY)
    )
    settings_blocks = [
        statement
        for stanza in document.statements
        if stanza.key.text == "global"
        for statement in stanza.block or ()
        if statement.block is not None
    ]
    for settings in settings_blocks:
        plugin = plugins.get(settings.key.text)
        if plugin is not None:
            document = plugin.expand(document, settings, context)
    return document


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """One diagnostic per (position, message): a bad superclass line is reported once,
    not once per host that inherits it."""
    return list(dict.fromkeys(diagnostics))

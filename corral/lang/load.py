"""Read a project file from disk and run it through parse and expand.

The entry point of the language front end: ``load_document`` gives the
expanded syntax tree that resolve turns into a model. The encoding is chosen
by the file name: ``.yaml``/``.yml`` is YAML, anything else the block
language. Whatever is wrong with the input — unreadable file, bytes that are
not UTF-8, syntax, includes, variables — comes back as one
:class:`~corral.errors.SourceErrors` holding every positioned problem found.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from corral.errors import SourceErrors, Span
from corral.lang.expand import expand
from corral.lang.parser import parse_text
from corral.lang.tree import Document
from corral.lang.yaml_source import parse_yaml

YAML_SUFFIXES = frozenset({".yaml", ".yml"})

_BOM = "\ufeff"


def load_document(path: Path, text: str | None = None) -> Document:
    """Parse ``path`` (or ``text`` as if read from it), splice includes, substitute variables.

    Positions name ``str(path)`` for the file itself and the include path as
    joined to its parent directory for included files. Includes are read from
    disk relative to ``path`` even when ``text`` is given.
    """
    path = Path(path)
    with _no_cycle_collection():
        try:
            document = parse_source(path, text)
        except (OSError, ValueError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise SourceErrors.single(
                Span(str(path), 1, 1), f"cannot read project file: {reason}"
            ) from None
        return expand(document, parse_source)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector while a tree is built.

    A big project creates hundreds of thousands of small acyclic objects (words,
    spans, statements); each batch of them triggers a collection that walks the
    whole growing heap, which more than doubled the load time of a 10,000-host
    file. The tree itself holds no cycles; what other garbage does is
    collected as soon as the collector runs again.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def parse_source(path: Path, text: str | None = None) -> Document:
    """Parse one file without expanding it; raises OSError when it cannot be read."""
    file = str(path)
    if text is None:
        text = decode(path.read_bytes(), file)
    text = text.removeprefix(_BOM)
    if path.suffix.lower() in YAML_SUFFIXES:
        return parse_yaml(text, file)
    return parse_text(text, file)


def decode(data: bytes, file: str) -> str:
    """UTF-8 text of ``data``, or a positioned error at the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start].decode("utf-8", errors="replace")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        byte = data[error.start]
        raise SourceErrors.single(
            Span(file, line, column),
            f"not UTF-8 text: byte 0x{byte:02x} cannot be decoded",
            "save the file as UTF-8",
        ) from None

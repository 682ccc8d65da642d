"""A project as the operations take it: text, a name for errors, a base directory.

The CLI reads a file (:meth:`ProjectSource.from_path`); the server gets the
text in a request body and names it itself. Either way the project is parsed
from ``text``, every error names ``name:LINE:COL``, and ``#include`` paths
resolve against ``base_dir`` (the directory the name stands for), never
against the server's working directory.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath

from corral.config import SiteConfig
from corral.errors import SourceErrors, Span
from corral.lang.expand import expand
from corral.lang.load import decode, parse_source
from corral.lang.tree import Document
from corral.model.project import Project


@dataclass(frozen=True, slots=True)
class ProjectSource:
    """The text of a project file, the name its errors carry and where includes live.

    ``path`` is set when the text was read from a file, so the state database
    can record where the project came from.
    """

    text: str
    name: str
    base_dir: Path
    path: Path | None = None
    # False for a project sent to the server as text: its #include, sshkey KEYFILE
    # and files { source } must not read the server's files.
    local_files: bool = True

    @classmethod
    def from_path(cls, path: Path | str) -> ProjectSource:
        """Read ``path``; an unreadable file or bytes that are not UTF-8 are positioned errors."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise SourceErrors.single(
                Span(str(path), 1, 1), f"cannot read project file: {error.strerror or error}"
            ) from None
        return cls(decode(data, str(path)), str(path), path.parent.absolute(), path)

    @property
    def origin(self) -> str:
        """Where the project came from, for the record: the absolute file, else its name."""
        return str(self.path.resolve()) if self.path is not None else self.name

    def document(self) -> Document:
        """Parse and expand the text; includes are read from under ``base_dir``."""
        named = Path(self.name)
        try:
            document = parse_source(named, self.text)
        except ValueError as error:
            raise SourceErrors.single(Span(self.name, 1, 1), str(error)) from None

        def include(target: Path) -> Document:
            if not self.local_files:
                raise ValueError("a project sent to the server cannot include files of the "
                                 "server's machine")
            on_disk = self.locate(target)
            return parse_source(target, decode(on_disk.read_bytes(), str(target)))

        return expand(document, include)

    def locate(self, target: Path) -> Path:
        """The file an include names: ``target`` is spelled relative to the name's
        directory (as errors show it); on disk that directory is ``base_dir``."""
        if target.is_absolute():
            return target
        return self.base_dir / _relative(target, PurePath(self.name).parent)

    def load(self, site: SiteConfig) -> Project:
        """The resolved, validated project (every problem in one SourceErrors)."""
        from corral.model.load import model_of
        from corral.plugins.registry import PluginRegistry

        with _gc_paused():
            return model_of(self.document(), site, PluginRegistry.from_entry_points(),
                            local_files=self.local_files)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic collector while a project loads: loading makes hundreds of
    thousands of small acyclic objects, and rescanning them more than doubles the
    load time of a big project (see ``corral.model.load``)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _relative(target: PurePath, directory: PurePath) -> PurePath:
    """``target`` relative to ``directory``, lexically (``..`` kept as written)."""
    try:
        return target.relative_to(directory)
    except ValueError:
        return target


SourceLike = ProjectSource | Path | str


def as_source(source: SourceLike) -> ProjectSource:
    """A ProjectSource as it is, or read from a path (the CLI's and tests' way)."""
    return source if isinstance(source, ProjectSource) else ProjectSource.from_path(source)

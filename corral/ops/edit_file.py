"""``corral set`` / ``corral unset``: change one key of a project file, checked first.

The edit itself is :func:`corral.lang.key_edit.edit_key`; what this module
adds is the rule every caller follows: the edited text must load as the
``validate`` command loads a file (includes read relative to the file, the
site's templates and plugins) before anything is written, and a text that
does not is refused with every positioned error, the file left as it was.

* :func:`edit_file` edits a file of this machine, replaced atomically;
* :func:`edit_recorded` edits the file the server keeps for a project (the
  web portal's editor's text), saved by the editor's own rule
  (:func:`corral.ops.projects.save_source`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from corral.config import SiteConfig
from corral.errors import InvalidRequest, SourceErrors, Span
from corral.lang.key_edit import Edited, KeyChange, edit_key
from corral.lang.keypath import parse_key_path
from corral.lang.parser import parse_text
from corral.model.schema import HOST_KEYS, STANZAS, Shape
from corral.ops.files import replace_text
from corral.ops.journal import project_lock
from corral.ops.projects import recorded_source, store_source
from corral.ops.session import Session
from corral.ops.source import ProjectSource

LABELLED_KEYS = frozenset(
    {s for s in STANZAS if s != "global"}
    | {name for name, spec in HOST_KEYS.items() if spec.shape is Shape.LABELLED_BLOCK}
)
"""Keys whose blocks take a label: a missing ``network eth1`` is written with it."""


class NotWritten(SourceErrors):
    """The edit was made in memory only: the result does not load. Its errors are
    shown with the lines of the edited text, which is on no disk."""

    def __init__(self, errors: SourceErrors, edited: Edited) -> None:
        super().__init__(errors.diagnostics)
        self.edited = edited
        self.hint = f"not written: {edited.change.summary()} gives a project that does not load"

    def render(self) -> str:
        lines = self.edited.text.splitlines()
        shown = []
        for diagnostic in self.diagnostics:
            if diagnostic.span.file != self.edited.change.file:
                shown.append(diagnostic.render())
                continue
            text = diagnostic.render(with_source=False)
            if 1 <= diagnostic.span.line <= len(lines):
                caret = " " * (max(diagnostic.span.column, 1) - 1) + "^"
                text += f"\n    {lines[diagnostic.span.line - 1]}\n    {caret}"
            shown.append(text)
        return "\n".join([*shown, f"hint: {self.hint}"])


def words_of(value: str) -> list[str]:
    """The words of ``value`` as the file would read them after a key (the web
    portal's one-line field): ``"a b"`` is one word, and nothing a flag."""
    try:
        document = parse_text(f"key {value}", "value")
    except SourceErrors as errors:
        raise InvalidRequest(f"the value does not read as words: "
                             f"{errors.diagnostics[0].message}") from None
    statements = document.statements
    if len(statements) != 1 or statements[0].is_block:
        raise InvalidRequest("the value must be words on one line, without ';', '{' or '}'")
    return [word.text for word in statements[0].values]


def edit_source(source: ProjectSource, path: str, values: Sequence[str] | None,
                site: SiteConfig) -> Edited:
    """``source`` with the key ``path`` set to ``values`` (None: removed), checked
    to load; raises :class:`NotWritten` when it does not."""
    key_path = parse_key_path(path)
    edited = edit_key(source.text, str(Path(source.name)), key_path, values,
                      view=source.document(), labelled=LABELLED_KEYS)
    try:
        replace(source, text=edited.text).load(site)
    except SourceErrors as errors:
        raise NotWritten(errors, edited) from None
    return edited


def edit_file(site: SiteConfig, file: Path, path: str,
              values: Sequence[str] | None) -> KeyChange:
    """Edit project file ``file`` of this machine in place."""
    source = ProjectSource.from_path(file)
    edited = edit_source(source, path, values, site)
    try:
        replace_text(file, edited.text)
    except OSError as error:
        raise SourceErrors.single(
            Span(str(file), 1, 1),
            f"cannot write project file: {error.strerror or error}",
            "nothing was changed; the directory must be writable, as the file is "
            "replaced by a new one") from None
    return edited.change


def edit_recorded(session: Session, project: str, path: str,
                  values: Sequence[str] | None) -> KeyChange:
    """Edit the file the server keeps for ``project`` and save it as the editor does.

    The caller authorises (write access) and audits. The project's lock is
    held from the read to the write, not waited for (as by
    :func:`corral.ops.projects.save_source`). A project last applied from a
    file of the server's machine is edited from that file's text and
    saved as text, which reads no file of the server (as the editor's save).
    """
    with project_lock(session, project, "set", wait=False):  # read and write as one
        current = recorded_source(session, project)
        name = current.path.name if current.path is not None else current.name
        given = ProjectSource(current.text, name, Path("/"), local_files=False)
        edited = edit_source(given, path, values, session.site)
        store_source(session, project, replace(given, text=edited.text))
    return edited.change

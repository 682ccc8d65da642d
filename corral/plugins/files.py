"""``files``: write files into the guest at first boot.

    global {
        files {
            /etc/motd "Welcome to the lab\n"          # PATH TEXT...
            /etc/app.conf {                           # or PATH { ... }
                source app.conf                       # content from a local file
                owner root:app                        # default root:root
                permissions 0640                      # default 0644
            }
        }
    }
    host web1 { files { /etc/motd "web1 only\n" } }

A ``PATH TEXT...`` line joins its words with spaces (quote text to keep
spacing; ``\\n`` is a newline). ``source`` is relative to the file that names
it, read when the project is loaded. A host's block is merged over the global
one, so a host may replace a file or add its own. Files end up in
``Host.files`` (cloud-init ``write_files``), in path order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from corral.lang.tree import Statement
from corral.model.project import FileSpec, Host
from corral.model.schema import KeySpec, Shape
from corral.model.statements import read_block, simple_fields, value_word
from corral.plugins.base import ApplyContext, Plugin, local_file

_OWNER = re.compile(r"[a-z_][a-z0-9_-]*(:[a-z_][a-z0-9_-]*)?")
_MODE = re.compile(r"0?[0-7]{3,4}")


def _owner(text: str) -> str:
    if not _OWNER.fullmatch(text):
        raise ValueError(f"'{text}' is not USER or USER:GROUP")
    return text if ":" in text else f"{text}:{text}"


def _mode(text: str) -> str:
    if not _MODE.fullmatch(text):
        raise ValueError(f"'{text}' is not an octal mode like 0644")
    return text if len(text) == 4 else f"0{text}"


FILE_KEYS = {
    spec.name: spec
    for spec in (
        KeySpec("content", Shape.VALUES, "the file's text"),
        KeySpec("source", Shape.VALUE, "local file to copy"),
        KeySpec("owner", Shape.VALUE, "USER:GROUP", _owner, "owner"),
        KeySpec("permissions", Shape.VALUE, "octal mode", _mode, "permissions"),
    )
}


class FilesPlugin(Plugin):
    """Adds ``Host.files`` from ``files { PATH ... }`` blocks."""

    name = "files"
    claims = frozenset({"files"})

    def apply(
        self, host: Host, settings: tuple[Statement, ...], context: ApplyContext
    ) -> Mapping[str, Any]:
        return {"files": with_files(host, file_specs(settings, context))}


def with_files(host: Host, specs: Iterable[FileSpec]) -> tuple[FileSpec, ...]:
    """The host's files with ``specs`` added; a new spec replaces one at the same path."""
    by_path = {spec.path: spec for spec in host.files}
    by_path.update((spec.path, spec) for spec in specs)
    return tuple(by_path[path] for path in sorted(by_path))


def file_specs(settings: tuple[Statement, ...], context: ApplyContext) -> list[FileSpec]:
    sink = context.sink
    specs: list[FileSpec] = []
    for statement in settings:
        path = statement.key.text
        if not path.startswith("/"):
            sink.error(statement.span, f"files: '{path}' is not an absolute path in the guest")
            continue
        if statement.block is None:
            if statement.values:
                text = " ".join(word.text for word in statement.values)
                specs.append(FileSpec(path=path, content=text))
            else:
                sink.error(statement.span, f"files: {path} needs text or a block")
            continue
        spec = _block_spec(path, statement, context)
        if spec is not None:
            specs.append(spec)
    return specs


def _block_spec(path: str, statement: Statement, context: ApplyContext) -> FileSpec | None:
    sink = context.sink
    groups = read_block(statement.block or (), FILE_KEYS, sink)
    fields = simple_fields(groups, FILE_KEYS, sink)
    if ("content" in groups) == ("source" in groups):
        sink.error(statement.span, f"files: {path} needs exactly one of content or source")
        return None
    if "content" in groups:
        content = " ".join(w.text for s in groups["content"] for w in s.values)
    else:
        word = value_word(groups, "source")
        assert word is not None
        local = local_file(word, context, "files")
        if local is None:
            return None
        try:
            content = local.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            sink.error(word.span, f"files: cannot read {local}: {reason}")
            return None
    return FileSpec(path=path, content=content, **fields)

"""Replacing a project file's text on disk in one step.

An edited project file is written to a new file in the same directory and
renamed over the old one: a reader (``corral up``, an editor, a crash) sees
the old text or the new, never half of it. The file keeps its permissions.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def replace_text(path: Path, text: str) -> None:
    """Make ``path`` hold ``text`` (UTF-8), atomically, keeping its mode."""
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".corral-tmp",
                                         dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

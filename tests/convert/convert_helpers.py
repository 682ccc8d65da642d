"""What the converter tests share: a source file written for a test, and the CLI run
as a module (the interpreter of the tests, no terminal)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def source(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def corral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, check=False)

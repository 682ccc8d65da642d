"""The one exception hierarchy of Corral.

Every error a user can cause is a :class:`CorralError`. Library code raises
these and never prints or exits; exactly one place (``corral.cli.errors``)
turns them into text and an exit code, and the server maps ``category`` to an
HTTP status.

    CorralError                 category      exit  http
    ├── SourceErrors            "input"         1    400   (one or more positioned errors)
    ├── ConfigError             "config"        2    500   (site configuration)
    ├── NotFoundError           "not_found"     3    404
    ├── ConflictError           "conflict"      4    409   (refused: in use, needs --recreate, ...)
    ├── BackendError            "backend"       5    502   (libvirt, qemu-img, ...)
    └── OperationTimeout        "timeout"       6    504
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Span:
    """Where a piece of text came from: file, 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One positioned problem in a source file, with an optional hint."""

    span: Span
    message: str
    hint: str | None = None

    def render(self, with_source: bool = True) -> str:
        """``FILE:LINE:COL: error: message``, then the source line and a caret."""
        text = f"{self.span}: error: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        if with_source:
            line = _source_line(self.span)
            if line is not None:
                caret = " " * (max(self.span.column, 1) - 1) + "^"
                text += f"\n    {line}\n    {caret}"
        return text


def _source_line(span: Span) -> str | None:
    try:
        lines = Path(span.file).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    if 1 <= span.line <= len(lines):
        return lines[span.line - 1].replace("\t", " ")
    return None


class CorralError(Exception):
    """Root of every error Corral reports to a user."""

    category = "error"
    exit_code = 1
    http_status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class SourceErrors(CorralError):
    """One or more positioned errors in project files; all of them, not just the first."""

    category = "input"
    exit_code = 1
    http_status = 400

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(
            diagnostics, key=lambda d: (d.span.file, d.span.line, d.span.column)
        )
        first = self.diagnostics[0] if self.diagnostics else None
        super().__init__(first.render(with_source=False) if first else "invalid input")

    def render(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics)

    @classmethod
    def single(cls, span: Span, message: str, hint: str | None = None) -> SourceErrors:
        return cls([Diagnostic(span, message, hint)])


class ConfigError(CorralError):
    category = "config"
    exit_code = 2
    http_status = 500


class NotFoundError(CorralError):
    category = "not_found"
    exit_code = 3
    http_status = 404


class ConflictError(CorralError):
    category = "conflict"
    exit_code = 4
    http_status = 409


class BackendError(CorralError):
    category = "backend"
    exit_code = 5
    http_status = 502


class OperationTimeout(CorralError):
    category = "timeout"
    exit_code = 6
    http_status = 504


@dataclass
class DiagnosticSink:
    """Collects diagnostics so a stage can report every error in a file at once."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, span: Span, message: str, hint: str | None = None) -> None:
        self.items.append(Diagnostic(span, message, hint))

    def raise_if_any(self) -> None:
        if self.items:
            raise SourceErrors(list(self.items))

"""The one exception hierarchy of Corral, and the one table of outcome codes.

Every error a user can cause is a :class:`CorralError`. Library code raises
these and never prints or exits; the CLI (``corral.cli.errors``) turns them
into text and the exit code of their :class:`Outcome`, and the server into
the HTTP status of the same outcome. Exit codes and HTTP statuses are written
here and nowhere else, so every outcome has exactly one code of its own.

    CorralError                 outcome           exit  http
    ├── SourceErrors            INVALID_INPUT        1   422  (positioned errors in a project)
    ├── ConfigError             CONFIG               2   500  (site configuration)
    ├── NotFoundError           NOT_FOUND            3   404
    ├── ConflictError           CONFLICT             4   409  (refused: in use, --recreate, locked)
    │   └── ProjectLocked       CONFLICT             4   409  (another operation holds the project)
    ├── BackendError            BACKEND              5   502  (libvirt, qemu-img, ...)
    ├── OperationTimeout        TIMEOUT              6   504
    ├── InvalidRequest          INVALID_REQUEST      7   400  (bad name, size, target, count)
    ├── NotAuthenticated        UNAUTHENTICATED     11   401  (unknown/revoked token, password)
    ├── Forbidden               FORBIDDEN           12   403  (read-only share, metrics-only token)
    │   └── QuotaExceeded       FORBIDDEN           12   403  (the user's quota would be exceeded)
    ├── ServerUnreachable       UNREACHABLE         13   503  (--server: down, TLS, network)
    └── LocalOnly               REMOTE_REFUSED      14   400  (--server: a command of this machine)

A project that an identity may not see raises :class:`HiddenProject`, a
:class:`NotFoundError` with the very message of a project that does not
exist, so nobody learns the names of projects that are not theirs.

Outcomes that are not errors have codes of their own as well: ``NOT_READY``
(8: a guest did not become ready), ``CHANGES`` (9: ``plan`` found changes to
make), ``PARTIAL`` (10, HTTP 207: work across service hosts was partly done,
a service host that failed failed only its own VMs, each named with the
reason; a rerun finishes the job), ``USAGE`` (64: a bad command line),
``INTERNAL`` (70: a bug) and ``INTERRUPTED`` (130).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


class Outcome(Enum):
    """How a command or request ended: its exit code, HTTP status and meaning."""

    OK = (0, 200, "success (plan: nothing to change)")
    INVALID_INPUT = (1, 422, "invalid project file (every error as FILE:LINE:COL)")
    CONFIG = (2, 500, "site configuration error")
    NOT_FOUND = (3, 404, "not found (project, host, VM, template, service host)")
    CONFLICT = (4, 409, "refused: conflict (in use, needs --recreate, project locked)")
    BACKEND = (5, 502, "libvirt or qemu-img failure")
    TIMEOUT = (6, 504, "timeout")
    INVALID_REQUEST = (7, 400, "invalid request (bad name, size, target or count)")
    NOT_READY = (8, 200, "done, but a guest did not become ready (reasons printed)")
    CHANGES = (9, 200, "plan: there are changes to make")
    PARTIAL = (10, 207, "partly done: VMs of a failing service host failed, the rest was done")
    UNAUTHENTICATED = (11, 401, "not authenticated (unknown or revoked token, wrong password)")
    FORBIDDEN = (12, 403, "not allowed (read-only share, metrics-only token, over quota)")
    UNREACHABLE = (13, 503, "the server of --server could not be reached (down, TLS, network)")
    REMOTE_REFUSED = (14, 400, "the command cannot run against a server (--server)")
    USAGE = (64, 400, "bad command line (unknown command or option)")
    INTERNAL = (70, 500, "internal error (a bug; CORRAL_DEBUG=1 shows where)")
    INTERRUPTED = (130, 500, "interrupted (Ctrl-C)")

    def __init__(self, exit_code: int, http_status: int, meaning: str) -> None:
        self.exit_code = exit_code
        self.http_status = http_status
        self.meaning = meaning


def outcome_table() -> str:
    """The exit codes as ``corral --help`` and ``plan --help`` show them."""
    return "\n".join(f"{o.exit_code:>4}  {o.meaning}" for o in Outcome)


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
    outcome = Outcome.INTERNAL

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code

    @property
    def http_status(self) -> int:
        return self.outcome.http_status

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
    outcome = Outcome.INVALID_INPUT

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
    outcome = Outcome.CONFIG


class NotFoundError(CorralError):
    category = "not_found"
    outcome = Outcome.NOT_FOUND


class HiddenProject(NotFoundError):
    """A project the identity may not see: told as "not found", exactly like one
    that does not exist; ``reason`` (the truth) is for the audit log only."""

    def __init__(self, project: str, reason: str) -> None:
        super().__init__(f"project '{project}' not found")
        self.reason = reason


class ConflictError(CorralError):
    category = "conflict"
    outcome = Outcome.CONFLICT


class BackendError(CorralError):
    category = "backend"
    outcome = Outcome.BACKEND


class OperationTimeout(CorralError):
    category = "timeout"
    outcome = Outcome.TIMEOUT


class ProjectLocked(ConflictError):
    """Another operation holds the project's lock (and the caller chose not to wait)."""


class InvalidRequest(CorralError):
    """A request that can never succeed as written: a bad name, size, target or count.

    Apart from :class:`NotFoundError`: ``vm reboot nodot`` is malformed,
    ``vm reboot lab.nohost`` is well formed but names nothing.
    """

    category = "invalid_request"
    outcome = Outcome.INVALID_REQUEST


class NotAuthenticated(CorralError):
    """Credentials that name nobody: an unknown or revoked token, a wrong password.

    The message says no more than that, whichever it was, so a guesser learns
    nothing; the audit log keeps the reason.
    """

    category = "unauthenticated"
    outcome = Outcome.UNAUTHENTICATED


class Forbidden(CorralError):
    """An identity that may see the object but not do this to it."""

    category = "forbidden"
    outcome = Outcome.FORBIDDEN


class QuotaExceeded(Forbidden):
    """The user's projects would need more VMs, memory or vCPUs than their quota."""


@dataclass
class DiagnosticSink:
    """Collects diagnostics so a stage can report every error in a file at once."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, span: Span, message: str, hint: str | None = None) -> None:
        self.items.append(Diagnostic(span, message, hint))

    def raise_if_any(self) -> None:
        if self.items:
            raise SourceErrors(list(self.items))


class ServerUnreachable(CorralError):
    """The CLI's ``--server`` did not answer: refused connection, TLS failure, timeout.

    Raised by the CLI's client only; a server never answers with it."""

    category = "unreachable"
    outcome = Outcome.UNREACHABLE


class LocalOnly(CorralError):
    """A command that works on the machine it runs on (``corral server``, files of
    the server's machine) asked of a server with ``--server``."""

    category = "local_only"
    outcome = Outcome.REMOTE_REFUSED

"""Talking to the management server: one httpx client, the server's errors as ours.

Every answer that is not a success carries the error body of
:mod:`corral.server.errors` (``error``, ``kind``, ``exit_code``, ``hint``,
``diagnostics``); it becomes the :class:`~corral.errors.CorralError` of the
same outcome, so the CLI prints it and exits exactly as when the operation
fails on this machine. A server that cannot be reached (refused, TLS, timeout)
is :class:`~corral.errors.ServerUnreachable`, one message naming the URL.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from corral.errors import (
    BackendError,
    ConfigError,
    ConflictError,
    CorralError,
    Diagnostic,
    Forbidden,
    InvalidRequest,
    NotAuthenticated,
    NotFoundError,
    OperationTimeout,
    Outcome,
    ServerUnreachable,
    SourceErrors,
    Span,
)

API = "/api/v1"
TOKEN_ENV = "CORRAL_TOKEN"
# Connecting and each read.
TIMEOUT_S = 120.0
# A job's event stream is quiet while its job works, but the server writes a
# keep-alive every 15 s: a minute of nothing is a connection lost (reopened).
STREAM_READ_S = 60.0
_BY_OUTCOME: dict[Outcome, type[CorralError]] = {
    cls.outcome: cls for cls in (ConfigError, NotFoundError, ConflictError, BackendError,
                                 OperationTimeout, InvalidRequest, NotAuthenticated, Forbidden)
}


@dataclass(frozen=True)
class Remote:
    """Where the server is and how to prove who we are (never on the command line)."""

    url: str
    token: str | None = field(default=None, repr=False)
    ca_cert: Path | None = None

    @classmethod
    def of(cls, url: str, token_file: Path | None, ca_cert: Path | None,
           environ: Mapping[str, str] = os.environ) -> Remote:
        """The server at ``url``; the token from ``token_file``, else ``$CORRAL_TOKEN``."""
        url = url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest(f"--server {url}: give an http:// or https:// URL",
                                 hint="e.g. --server https://corral.example:8443")
        token = environ.get(TOKEN_ENV) or None
        if token_file is not None:
            try:
                lines = token_file.read_text(encoding="utf-8").strip().splitlines()
                token = lines[0].strip() if lines else None
            except OSError as error:
                raise InvalidRequest(
                    f"--token-file {token_file}: {error.strerror or error}") from None
        if ca_cert is not None and not ca_cert.is_file():
            raise InvalidRequest(f"--ca-cert {ca_cert}: no such file")
        return cls(url, token, ca_cert)


class Transport:
    """Requests to one server's API, answers as JSON or text, failures as CorralErrors.

    ``names`` maps a project file's name as sent to the path it was read
    from, so positioned errors name the file as the user gave it.
    """

    def __init__(self, remote: Remote, timeout_s: float = TIMEOUT_S) -> None:
        self.remote = remote
        headers = {"Accept": "application/json"}
        if remote.token:
            headers["Authorization"] = f"Bearer {remote.token}"
        self.headers = headers
        self.verify: ssl.SSLContext | bool = _verify(remote.ca_cert)
        self._client = httpx.Client(base_url=remote.url + API, headers=headers,
                                    verify=self.verify, timeout=timeout_s)
        self.names: dict[str, str] = {}

    def close(self) -> None:
        self._client.close()

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def text(self, method: str, path: str, **kwargs: Any) -> str:
        return self.request(method, path, **kwargs).text

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.reaching():
            answer = self._client.request(method, path, **kwargs)
        if answer.is_error:
            raise self.error_of(answer)
        return answer

    @contextmanager
    def stream(self, path: str, headers: Mapping[str, str]) -> Iterator[httpx.Response]:
        """A streamed GET (a job's events); an error answer raised as ours."""
        timeout = httpx.Timeout(TIMEOUT_S, read=STREAM_READ_S)
        with self.reaching(), self._client.stream("GET", path, headers=dict(headers),
                                                  timeout=timeout) as answer:
            if answer.is_error:
                answer.read()
                raise self.error_of(answer)
            yield answer

    @contextmanager
    def reaching(self) -> Iterator[None]:
        """httpx's transport failures as :class:`ServerUnreachable`, naming the URL."""
        try:
            yield
        except httpx.TransportError as error:
            raise unreachable(self.remote.url, error) from None

    def error_of(self, answer: httpx.Response) -> CorralError:
        """The CorralError an error answer stands for."""
        return self.error_of_body(answer.status_code, answer.content)

    def error_of_body(self, status: int, content: bytes) -> CorralError:
        """The CorralError of an error answer's status and body."""
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        if not isinstance(body, dict) or "error" not in body:
            return ServerUnreachable(
                f"{self.remote.url} answered HTTP {status} without a Corral "
                "error: is it a Corral server?", hint="check --server / CORRAL_SERVER")
        return error_from_body(body, status, self.remote.url, self.names)


def error_from_body(body: Mapping[str, Any], status: int, url: str,
                    names: Mapping[str, str]) -> CorralError:
    """The error of :func:`corral.server.errors.error_body` as it was raised on the server."""
    message, hint = str(body.get("error", "")), body.get("hint")
    if body.get("diagnostics"):
        return SourceErrors([
            Diagnostic(Span(names.get(d["file"], d["file"]), d["line"], d["column"]),
                       d["message"], d.get("hint"))
            for d in body["diagnostics"]])
    if status == 401:
        return NotAuthenticated(f"{url}: {message}",
                                hint=hint or "give a token of yours in CORRAL_TOKEN or "
                                "--token-file (corral token create USER makes one)")
    outcome = next((o for o in Outcome if o.exit_code == body.get("exit_code")), None)
    kind = _BY_OUTCOME.get(outcome) if outcome is not None else None
    if kind is None:
        error = CorralError(message, hint=hint)
        if outcome is not None:
            error.outcome = outcome  # e.g. internal: the server's own one-line report
        return error
    return kind(message, hint=hint)


def unreachable(url: str, error: Exception) -> ServerUnreachable:
    """One message for a server that did not answer, and what to check."""
    reason = str(error) or type(error).__name__
    if "CERTIFICATE_VERIFY_FAILED" in reason or isinstance(error, ssl.SSLError):
        return ServerUnreachable(f"cannot reach the server at {url}: TLS: {reason}",
                                 hint="trust its certificate with --ca-cert FILE or "
                                 "CORRAL_CA_CERT")
    if "WRONG_VERSION_NUMBER" in reason or isinstance(error, httpx.RemoteProtocolError):
        return ServerUnreachable(f"cannot reach the server at {url}: {reason}",
                                 hint="http:// or https://? the server answered another "
                                 "protocol")
    return ServerUnreachable(f"cannot reach the server at {url}: {reason}",
                             hint="is `corral server` running there, and may this machine "
                             "reach it?")


def _verify(ca_cert: Path | None) -> ssl.SSLContext | bool:
    """The system's trust store, or exactly ``ca_cert`` when given."""
    if ca_cert is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_cert))
    except (OSError, ssl.SSLError) as error:
        raise InvalidRequest(f"--ca-cert {ca_cert}: not a PEM certificate: {error}") from None

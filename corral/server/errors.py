"""Errors as HTTP answers: the one table of :mod:`corral.errors` decides the status.

Every answer that is not a success is ``{"error", "kind", "exit_code",
"hint"}`` (plus ``diagnostics`` for a project file that does not load), with
the HTTP status of the error's :class:`~corral.errors.Outcome`. Malformed
requests (a body that is not JSON, a missing field, a path parameter of the
wrong type) are ``invalid request`` (400) with one message naming every
problem; an unexpected exception is one line of "internal error", never a
traceback.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from corral.errors import CorralError, NotAuthenticated, Outcome, SourceErrors

log = logging.getLogger("corral.server")
# What a client must send when it is not authenticated (RFC 6750).
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="corral"'}


def error_body(error: CorralError) -> dict[str, object]:
    body: dict[str, object] = {
        "error": error.message, "kind": error.category, "exit_code": error.exit_code,
        "hint": error.hint,
    }
    if isinstance(error, SourceErrors):
        body["diagnostics"] = [
            {"file": d.span.file, "line": d.span.line, "column": d.span.column,
             "message": d.message, "hint": d.hint}
            for d in error.diagnostics
        ]
    return body


def error_response(error: CorralError) -> JSONResponse:
    headers = CHALLENGE if isinstance(error, NotAuthenticated) else None
    return JSONResponse(error_body(error), status_code=error.http_status, headers=headers)


def outcome_response(outcome: Outcome, message: str, kind: str) -> JSONResponse:
    return JSONResponse(
        {"error": message, "kind": kind, "exit_code": outcome.exit_code, "hint": None},
        status_code=outcome.http_status,
    )


def _where(location: tuple[object, ...] | list[object]) -> str:
    return ".".join(str(part) for part in location) or "request"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the answers above."""

    @app.exception_handler(CorralError)
    async def corral_error(_request: Request, error: CorralError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{_where(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in error.errors()
        )
        return outcome_response(Outcome.INVALID_REQUEST, f"invalid request: {problems}",
                                "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        kinds = {404: (Outcome.NOT_FOUND, "not_found"), 405: (Outcome.INVALID_REQUEST,
                                                              "invalid_request")}
        outcome, kind = kinds.get(error.status_code, (Outcome.INVALID_REQUEST, "invalid_request"))
        response = outcome_response(outcome, str(error.detail), kind)
        response.status_code = error.status_code
        return response

    @app.exception_handler(Exception)
    async def internal(_request: Request, error: Exception) -> JSONResponse:
        log.exception("internal error")
        return outcome_response(Outcome.INTERNAL, f"internal error: {type(error).__name__}",
                                "internal")

"""The FastAPI application of the management server, made by :func:`create_app`.

Layers, outermost first: the allowed networks (a client from elsewhere is
refused before anything else), request metrics, the status route's express
lane (:mod:`corral.server.express`), then FastAPI's routing
with the error handlers of :mod:`corral.server.errors`: the API under
``/api``, ``/metrics``, and the web portal's pages (:mod:`corral.server.portal`). Everything the app
keeps lives on ``app.state.corral`` (:class:`~corral.server.state.ServerState`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from corral.config import SiteConfig
from corral.ops.audit import record
from corral.ops.identity import Identity
from corral.ops.session import BackendFactory
from corral.server import errors
from corral.server.express import StatusExpress
from corral.server.identity import ANONYMOUS
from corral.server.jobs import DEFAULT_WORKERS, Liveness
from corral.server.metrics import CountRequests
from corral.server.models import ERRORS
from corral.server.network import AllowedNetworks
from corral.server.portal import pages as portal
from corral.server.routes import accounts, console, jobs, metrics, projects, vms
from corral.server.routes import site as site_routes
from corral.server.state import ServerState, server_state
from corral.state.store import StateStore

API = "/api/v1"
log = logging.getLogger("corral.server")

SETTLE_S = 15.0  # longest wait at shutdown for a status reading under way


def create_app(
    site: SiteConfig,
    *,
    backend_factory: BackendFactory | None = None,
    job_workers: int = DEFAULT_WORKERS,
    liveness: Liveness | None = None,
) -> FastAPI:
    """The server for ``site``: its routes, its state database, its job runner.

    When the app starts (its lifespan), before it takes requests, it records
    itself among the database's live servers (:class:`Liveness`) and marks
    interrupted the jobs that servers now gone left unfinished;
    the live feed of libvirt's changes watches from then until the app ends,
    and the site's status is read at once and kept young while it is asked
    for (the start counting as asked: see :mod:`corral.server.fresh`).
    """
    state = ServerState(site=site, store=StateStore(site.state_location()),
                        backend_factory=backend_factory, job_workers=job_workers,
                        liveness=liveness or Liveness())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        interrupted = server_state(app).jobs.start()
        if interrupted:
            log.warning("%d job(s) of a server process now gone marked interrupted",
                        interrupted)
        server_state(app).live.start()
        server_state(app).status.start(prime=True)
        try:
            yield
        finally:
            server_state(app).live.stop()
            server_state(app).jobs.shutdown()
            # A status reading begun ahead may still hold service-host connections.
            server_state(app).status.stop()
            server_state(app).status.settle(SETTLE_S)
            server_state(app).reader.close(SETTLE_S)

    app = FastAPI(
        title="Corral", version="1", lifespan=lifespan,
        description="Manage networks of libvirt VMs: the operations of the `corral` command.",
        openapi_url="/api/openapi.json", docs_url="/api/docs", redoc_url=None,
        swagger_ui_oauth2_redirect_url="/api/docs/oauth2-redirect",
    )
    app.state.corral = state
    errors.install(app)
    for module in (projects, vms, console, site_routes, accounts, jobs):
        app.include_router(module.router, prefix=API, responses=ERRORS)
    app.include_router(metrics.router, responses=ERRORS)
    portal.install(app)

    def refused(address: str, path: str) -> None:
        with state.session(Identity(name=ANONYMOUS, admin=False, source=address)) as session:
            record(session, session.identity, "connect", path[:200], "refused",
                   "address not in [server] allowed_networks")

    app.openapi = partial(_openapi, app)  # type: ignore[method-assign]
    status_route = next(r for r in app.routes
                        if isinstance(r, APIRoute) and r.path == f"{API}/status")
    app.add_middleware(StatusExpress, state=state, path=f"{API}/status", route=status_route)
    app.add_middleware(CountRequests, metrics=state.metrics)
    app.add_middleware(AllowedNetworks, networks=site.server.allowed_networks, refused=refused)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, saying what the server really answers to a malformed
    request: 400 with the error body (see :mod:`corral.server.errors`), not FastAPI's
    422 validation list; 422 stays where it is an invalid project file."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                given = responses.get("422", {}).get("content", {})
                schema = given.get("application/json", {}).get("schema", {})
                if schema.get("$ref", "").endswith("/HTTPValidationError"):
                    del responses["422"]
                    responses.setdefault("400", ERRORS[400] | {"content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
                    responses["400"].pop("model", None)
        schemas = document.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
    return app.openapi_schema

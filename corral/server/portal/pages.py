"""The portal's routes and static files, added to the server's app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from corral.server.portal import audit, auth, overview, projects, vms

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Add the portal's pages and ``/static`` (its CSS and the vendored htmx)."""
    for module in (auth, overview, vms, projects, audit):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

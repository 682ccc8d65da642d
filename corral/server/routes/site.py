"""The site: service hosts, their facts, templates and their copies.

Reading them is open to every user (a user chooses a service host for a
host, a template for a project); changing templates is an administrator's.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from corral.errors import InvalidRequest
from corral.ops import hosts, templates
from corral.ops.identity import require_admin
from corral.ops.projects import host_info
from corral.server import models
from corral.server.context import Caller
from corral.server.routes.projects import source

router = APIRouter(tags=["site"])
Timeout = Annotated[float, Query(ge=0.1, le=600, description="Seconds per service host.")]
TemplateName = Annotated[str, Path(max_length=200)]


@router.get("/hosts",
             summary="Every service host: reachability, versions, CPUs, memory")
def hosts_(call: Caller, timeout_s: Timeout = hosts.DEFAULT_TIMEOUT_S) -> list[dict[str, object]]:
    return [r.as_json() for r in hosts.hosts(call.session, timeout_s=timeout_s)]


@router.get("/info",
             summary="Facts and capabilities of one service host")
def info(call: Caller,
         service_host: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, object]:
    return host_info(call.session, service_host)


@router.get("/templates",
             summary="The registered templates")
def list_templates(call: Caller) -> list[dict[str, Any]]:
    return [t.as_json() for t in templates.list_templates(call.session)]


@router.get("/templates/copies",
            summary="The template copies each remote service host holds (administrators)")
def copies(call: Caller, service_host: Annotated[str | None, Query(max_length=200)] = None,
           ) -> dict[str, Any]:
    with call.refusals("template.copies", service_host or "*"):
        require_admin(call.identity, "look at the template copies")
    return dict(templates.template_copies(call.session, service_host).as_json())


@router.post("/templates/copies/verify",
             summary="Read every template copy back and delete those that differ from "
             "the registry (administrators)")
def verify_copies(call: Caller,
                  service_host: Annotated[str | None, Query(max_length=200)] = None,
                  ) -> dict[str, Any]:
    """A POST, audited: verifying deletes the copies that differ (the next use
    uploads them again), so it is a change, never a side effect of a read."""
    with call.audited("template.verify", service_host or "*"):
        require_admin(call.identity, "verify the template copies")
        found = templates.template_copies(call.session, service_host, verify=True)
    return dict(found.as_json())


@router.post("/templates",
             summary="Register a template from files on the server's machine "
             "(administrators)")
def add_template(call: Caller, body: models.TemplateAdd) -> dict[str, Any]:
    def path(text: str | None) -> FsPath | None:
        return FsPath(text) if text is not None else None

    with call.audited("template.add", body.name):
        require_admin(call.identity, f"add template '{body.name}'")
        added = templates.add_template(
            call.session, body.name, path(body.file), path(body.kernel), path(body.initrd),
            body.cmdline, disk_boots=body.disk_boots)
    return added.model_dump(mode="json")


@router.delete("/templates/{name}",
             summary="Unregister a template not in use "
               "(administrators)")
def remove_template(call: Caller, name: TemplateName) -> dict[str, Any]:
    with call.audited("template.remove", name):
        require_admin(call.identity, f"remove template '{name}'")
        templates.remove_template(call.session, name)
    return {"removed": name}


@router.post("/templates/build", status_code=202, responses=models.JOB,
             summary="Job: build a template from Debian "
             "packages (administrators)")
def build_template(call: Caller, body: models.TemplateBuild) -> JSONResponse:
    with call.refusals("template.build", body.name):
        require_admin(call.identity, f"build template '{body.name}'")
    if (body.project is None) != (body.host is None):
        raise InvalidRequest("give both project and host, or neither")
    for_host = None if body.project is None or body.host is None else (
        source(body.project), body.host)
    return call.job("template.build", body.template or body.host or body.name,
                    lambda s: _Built(templates.build_template(
                        s, body.name, body.template, body.debian(), for_host,
                    ).model_dump(mode="json")))


class _Built:
    """A built template as a job result."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def as_json(self) -> dict[str, Any]:
        return self.data

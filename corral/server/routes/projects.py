"""Projects: validate, show, plan, up, build, upgrade, start, stop, remove, status, list.

Each route authorises first (``authorize_action`` for the operation's
access), then calls the same :mod:`corral.ops` function the CLI does. The
changing ones run as jobs (202); a project file that does not load is
refused at once (422), before any job exists.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from corral.model import Project
from corral.ops import inventory, projects, reach
from corral.ops.edit_file import edit_recorded
from corral.ops.identity import require_admin
from corral.ops.quota import charged_user, check_quota
from corral.ops.results import plan_as_json
from corral.ops.session import Session
from corral.ops.source import ProjectSource
from corral.ops.status import DEFAULT_TIMEOUT_S, StatusReport
from corral.ops.visible import authorize_file, visible_list, visible_status
from corral.server import models
from corral.server.context import Call, Caller

router = APIRouter(tags=["projects"])
ProjectName = Annotated[str, Path(max_length=200, description="Project name.")]
Timeout = Annotated[float, Query(ge=0.1, le=600, description="Seconds per service host.")]
LoginUser = Annotated[str | None, Query(max_length=200, description="Log in as this user.")]
Group = Annotated[str | None, Query(max_length=200, description="Only the members of this "
                                                                "group of the project.")]


def source(body: models.ProjectFile) -> ProjectSource:
    """A request's project text, which may read no file of the server's machine."""
    return ProjectSource(body.text, body.name, FsPath("/"), local_files=False)


def _load(call: Call, body: models.ProjectFile) -> tuple[ProjectSource, Project]:
    given = source(body)
    return given, projects.load_source(given, call.server.site)


@router.get("/status", response_model=dict[str, object],
             summary="A row per VM of the projects the caller may see, and a row "
            "per service host")
async def status(call: Caller, project: Annotated[str | None, Query(max_length=200)] = None,
                 timeout_s: Timeout = DEFAULT_TIMEOUT_S, group: Group = None) -> JSONResponse:
    young = _young(call, timeout_s)
    if young is not None:
        with call.refusals("status", project or ""):
            return _status(call, project, timeout_s, young, group)
    return await run_in_threadpool(_status_refused, call, project, timeout_s, group)


@router.get("/projects/{project}/status", response_model=dict[str, object],
             summary="The project's rows and the service host "
            "rows")
async def project_status(call: Caller, project: ProjectName,
                         timeout_s: Timeout = DEFAULT_TIMEOUT_S,
                         group: Group = None) -> JSONResponse:
    young = _young(call, timeout_s)
    if young is not None:
        call.authorize(project, "status")
        return _status(call, project, timeout_s, young, group)
    return await run_in_threadpool(_project_status, call, project, timeout_s, group)


def _young(call: Call, timeout_s: float) -> StatusReport | None:
    """The shared reading when it is young enough to answer from at once, on the
    event loop: the status routes are the most requested under load, and the
    caller's cut is one indexed query, cheaper than a hop to a worker thread."""
    if timeout_s != DEFAULT_TIMEOUT_S:
        return None
    young = call.server.status.young()
    return None if young is None else young.value


def _status_refused(call: Call, project: str | None, timeout_s: float,
                    group: str | None) -> JSONResponse:
    with call.refusals("status", project or ""):
        return _status(call, project, timeout_s, None, group)


def _project_status(call: Call, project: str, timeout_s: float,
                    group: str | None) -> JSONResponse:
    call.authorize(project, "status")
    return _status(call, project, timeout_s, None, group)


def _status(call: Call, project: str | None, timeout_s: float,
            young: StatusReport | None = None, group: str | None = None) -> JSONResponse:
    """The status the caller may see: from the reading requests share (at most
    ``STATUS_MAX_AGE_S`` old), unless they ask for a timeout of their own.
    Rendered straight to JSON: the report is JSON's types already, and FastAPI's
    validation and encoding of a returned dict cost more than the rest of the
    answer (the most requested route under load)."""
    reading: Callable[[], StatusReport] | None = None
    if young is not None:
        reading = partial(_given, young)
    elif timeout_s == DEFAULT_TIMEOUT_S:
        reading = call.server.site_status
    return JSONResponse(visible_status(call.session, project, timeout_s=timeout_s,
                                       site_reading=reading, group=group).as_json())


def _given(report: StatusReport) -> StatusReport:
    return report


@router.get("/projects/{project}/ssh",
             summary="How to reach the project's guests over SSH: address and login user")
def ssh(call: Caller, project: ProjectName,
        host: Annotated[str | None, Query(max_length=200)] = None,
        user: LoginUser = None) -> list[dict[str, object]]:
    with call.refusals("ssh", project):
        return [t.as_json() for t in reach.ssh_targets(call.session, project, host, user)]


@router.get("/projects/{project}/inventory",
             summary="What an Ansible inventory of the project is made of: each guest's "
             "address, login user, superclasses and switches")
def inventory_of(call: Caller, project: ProjectName, user: LoginUser = None) -> dict[str, Any]:
    with call.refusals("inventory", project):
        return inventory.inventory(call.session, project, user).as_json()


@router.post("/validate", response_model=models.Validated, responses=models.INVALID_FILE,
             summary="Check a project file: 200 when valid, else 422 with "
             "every error")
def validate(call: Caller, body: models.ProjectFile) -> dict[str, Any]:
    errors = projects.validate_source(source(body), call.server.site)
    if errors is not None:
        raise errors
    return {"valid": True, "name": body.name}


@router.post("/show", responses=models.INVALID_FILE,
             summary="The resolved project of a project file")
def show(call: Caller, body: models.ProjectFile) -> dict[str, Any]:
    return _load(call, body)[1].contract()


@router.get("/projects/{project}/show",
             summary="The resolved project, from its recorded file")
def show_recorded(call: Caller, project: ProjectName) -> dict[str, Any]:
    call.authorize(project, "show")
    return projects.load_source(projects.recorded_source(call.session, project),
                                call.server.site).contract()


@router.post("/plan", responses=models.INVALID_FILE,
             summary="What up/upgrade of a project file would change")
def plan(call: Caller, body: models.ProjectFile) -> dict[str, Any]:
    given, model = _load(call, body)
    with call.refusals("plan", model.name):
        authorize_file(call.session, model.name, "plan")
    return plan_as_json(projects.plan_source(call.session, given))


@router.get("/projects/{project}/plan",
             summary="What up/upgrade of the recorded file would "
            "change")
def plan_recorded(call: Caller, project: ProjectName) -> dict[str, Any]:
    call.authorize(project, "plan")
    return plan_as_json(projects.plan_source(call.session,
                                             projects.recorded_source(call.session, project)))


@router.patch("/projects/{project}/file", responses=models.INVALID_FILE,
              summary="Set or remove one key of the project's file (the one the server "
              "keeps), saved only when the result loads")
def edit_file(call: Caller, project: ProjectName, body: models.KeyEdit) -> dict[str, Any]:
    with call.audited("project.edit", project):
        call.authorize(project, "upgrade")
        return edit_recorded(call.session, project, body.path, body.words()).as_json()


def _apply_job(call: Call, body: models.Apply, operation: str) -> JSONResponse:
    """The job of up, build or upgrade. A project over its owner's quota (the
    caller's, for a new one) is refused here (403), before any job exists; the
    job checks again as it starts, since another job may have grown that usage
    in between."""
    given, model = _load(call, body)
    call.authorize(model.name, operation)
    with call.refusals(operation, model.name):
        check_quota(call.session, charged_user(call.session, call.identity.name, model.name),
                    model)

    def work(session: Session) -> Any:
        if isinstance(body, models.Up):
            return projects.up(session, given, recreate=body.recreate, wait=body.wait,
                               wait_lock=body.wait_lock)
        if isinstance(body, models.Upgrade):
            return projects.upgrade(session, given, recreate=body.recreate, prune=body.prune,
                                    wait_lock=body.wait_lock)
        return projects.build(session, given, recreate=body.recreate, wait_lock=body.wait_lock)

    return call.job(operation, model.name, work)


@router.post("/projects/up", status_code=202,
             responses=models.JOB | models.INVALID_FILE,
             summary="Job: build, start, wait until ready")
def up(call: Caller, body: models.Up) -> JSONResponse:
    return _apply_job(call, body, "up")


@router.post("/projects/build", status_code=202,
             responses=models.JOB | models.INVALID_FILE,
             summary="Job: build without starting")
def build(call: Caller, body: models.Apply) -> JSONResponse:
    return _apply_job(call, body, "build")


@router.post("/projects/upgrade", status_code=202,
             responses=models.JOB | models.INVALID_FILE,
             summary="Job: apply a changed project file")
def upgrade(call: Caller, body: models.Upgrade) -> JSONResponse:
    return _apply_job(call, body, "upgrade")


@router.post("/projects/{project}/start", status_code=202, responses=models.JOB,
             summary="Job: start and wait")
def start(call: Caller, project: ProjectName, body: models.Start) -> JSONResponse:
    call.authorize(project, "start")
    return call.job("start", project, lambda s: projects.start(
        s, project, body.hosts, wait=body.wait))


@router.post("/projects/{project}/stop", status_code=202, responses=models.JOB,
             summary="Job: ACPI shutdown, forced "
             "after the timeout")
def stop(call: Caller, project: ProjectName, body: models.Stop) -> JSONResponse:
    call.authorize(project, "stop")
    return call.job("stop", project, lambda s: projects.stop(
        s, project, body.hosts, timeout_s=body.timeout_s))


@router.post("/projects/{project}/suspend", status_code=202, responses=models.JOB,
             summary="Job: save the memory of the project's running VMs to disk and stop "
             "them (start resumes them)")
def suspend(call: Caller, project: ProjectName) -> JSONResponse:
    from corral.ops.fleet import act_on_all
    from corral.ops.requests import check_name

    call.authorize(project, "suspend")
    check_name("project", project)
    return call.job("suspend", project, lambda s: act_on_all(s, "suspend", project=project))


@router.get("/projects/{project}/removal",
             summary="What removing the project would delete")
def removal(call: Caller, project: ProjectName) -> dict[str, Any]:
    call.authorize(project, "remove")
    preview = projects.describe_removal(call.session, project)
    return {"project": preview.project, "domains": list(preview.domains),
            "networks": list(preview.networks), "volumes": list(preview.volumes)}


@router.delete("/projects/{project}", status_code=202, responses=models.JOB,
             summary="Job: remove the project's "
               "domains, networks and disks")
def remove(call: Caller, project: ProjectName, wait_lock: bool = True) -> JSONResponse:
    call.authorize(project, "remove")
    return call.job("remove", project, lambda s: projects.remove(
        s, project, wait_lock=wait_lock))


@router.get("/projects",
             summary="The projects the caller may see")
def list_(call: Caller) -> list[dict[str, object]]:
    return [p.as_json() for p in visible_list(call.session)]


@router.post("/fleet", status_code=202, responses=models.JOB,
             summary="Job: stop, suspend or start every VM of "
             "every project (administrators)")
def fleet(call: Caller, body: models.Everything) -> JSONResponse:
    from corral.ops.fleet import act_on_all

    with call.refusals(f"{body.action} --all", "*"):
        require_admin(call.identity, f"{body.action} every VM")
    return call.job(f"{body.action} --all", "*", lambda s: act_on_all(
        s, body.action, timeout_s=body.timeout_s))

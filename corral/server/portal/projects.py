"""A project's page (``/projects/PROJECT``): its file, its plan, and up/upgrade/remove.

The file is the project's current one (:func:`corral.ops.projects.recorded_source`):
the text last applied through the server or saved here, kept in the state
database, else the file on the server's machine it was applied from. A
writer edits it here; it is saved only when it loads (every error shown at
its file, line and column), read as any text sent to the server is, without
the server's files. One key may be set or removed by its PATH instead, by
``corral set``'s own operation (:mod:`corral.ops.edit_file`). Up, upgrade
and remove start the same jobs the API's routes start, and the job's page
follows its progress live.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path as FsPath
from typing import Annotated, Literal

from fastapi import Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from corral.errors import (
    CorralError,
    Forbidden,
    HiddenProject,
    InvalidRequest,
    NotFoundError,
    ProjectLocked,
    SourceErrors,
)
from corral.ops import projects
from corral.ops.edit_file import edit_recorded, words_of
from corral.ops.results import plan_as_json
from corral.ops.session import Session
from corral.ops.source import ProjectSource
from corral.server.jobs import Result
from corral.server.models import MAX_FILE, NAME
from corral.server.portal.feed import sse
from corral.server.portal.guard import PortalCall, PortalCaller, may, portal_router
from corral.server.portal.render import page, render
from corral.server.state import ServerState
from corral.state.jobs import Jobs
from corral.state.texts import ProjectTexts

router = portal_router()
ProjectName = Annotated[str, Path(max_length=200)]
JobId = Annotated[str, Path(max_length=64)]
Operation = Literal["up", "upgrade"]
POLL_S = 0.3


def _project_page(call: PortalCall, project: str, *, text: str | None = None,
                  name: str | None = None, errors: SourceErrors | None = None,
                  notice: str | None = None, status: int = 200) -> Response:
    call.authorize(project, "show")
    file_problem = plan = None
    current: ProjectSource | None = None
    try:
        current = projects.recorded_source(call.session, project)
    except CorralError as error:
        file_problem = error.message
    if current is not None and errors is None:
        try:
            plan = plan_as_json(projects.plan_source(call.session, current))
        except CorralError as error:
            file_problem = error.message
    saved = ProjectTexts(call.session.require_store()).get(project)
    return page(
        "project.html", status=status, me=call.identity, csrf=call.csrf, project=project,
        text=text if text is not None else (current.text if current else ""),
        name=name or (current.name if current else f"{project}.corral"), saved=saved,
        file_problem=file_problem, plan=plan, errors=errors, notice=notice,
        writable=may(call.session, project, "upgrade"),
        removable=may(call.session, project, "remove"))


@router.get("/projects/{project}")
async def project_page(call: PortalCaller, project: ProjectName) -> Response:
    return await run_in_threadpool(_project_page, call, project)


@router.post("/projects/{project}/file")
async def save_file(call: PortalCaller, project: ProjectName,
                    text: Annotated[str, Form(max_length=MAX_FILE)],
                    name: Annotated[str, Form(pattern=NAME)] = "project.corral") -> Response:
    def save() -> Response:
        source = ProjectSource(text.replace("\r\n", "\n"), name, FsPath("/"), local_files=False)
        try:
            with call.audited("project.save", project):
                call.authorize(project, "upgrade")
                projects.save_source(call.session, project, source)
        except SourceErrors as errors:
            return _project_page(call, project, text=source.text, name=name, errors=errors,
                                 status=422)
        except ProjectLocked as locked:  # the text stays in the editor, not saved
            return _project_page(call, project, text=source.text, name=name,
                                 notice=f"not saved: {locked.message}", status=409)
        return _project_page(call, project, notice=f"saved {name}")

    return await run_in_threadpool(save)


@router.post("/projects/{project}/key")
async def set_key(call: PortalCaller, project: ProjectName,
                  path: Annotated[str, Form(max_length=1000)],
                  value: Annotated[str, Form(max_length=MAX_FILE)] = "",
                  action: Annotated[Literal["set", "unset"], Form()] = "set") -> Response:
    """One key of the file set or removed (``corral set``'s operation): saved only
    when the result loads, else the page shows every error and saves nothing."""
    def edit() -> Response:
        try:
            with call.audited("project.edit", project):
                call.authorize(project, "upgrade")
                words = None if action == "unset" else words_of(value)
                change = edit_recorded(call.session, project, path, words)
        except SourceErrors as errors:
            return _project_page(call, project, errors=errors, status=422)
        except (HiddenProject, Forbidden):
            raise
        except (InvalidRequest, NotFoundError, ProjectLocked) as refused:
            return _project_page(call, project, notice=refused.render().removeprefix("error: "),
                                 status=refused.http_status)
        return _project_page(call, project, notice=change.summary())

    return await run_in_threadpool(edit)


@router.post("/projects/{project}/apply/{operation}")
async def apply(call: PortalCaller, project: ProjectName, operation: Operation) -> Response:
    def submit() -> str:
        call.authorize(project, operation)
        source = projects.recorded_source(call.session, project)
        projects.load_source(source, call.server.site)  # refused now, not in the job

        def work(session: Session) -> Result:
            if operation == "up":
                return projects.up(session, source)
            return projects.upgrade(session, source)

        return call.server.jobs.submit(call.identity, operation, project, work).id

    job = await run_in_threadpool(submit)
    return RedirectResponse(f"/jobs/{job}", status_code=303)


@router.post("/projects/{project}/remove")
async def remove(call: PortalCaller, project: ProjectName,
                 confirm: Annotated[str, Form(max_length=10)] = "") -> Response:
    def submit() -> Response:
        call.authorize(project, "remove")
        if confirm != "yes":
            preview = projects.describe_removal(call.session, project)
            return page("project_remove.html", me=call.identity, csrf=call.csrf,
                        project=project, preview=preview)
        job = call.server.jobs.submit(call.identity, "remove", project,
                                      lambda s: projects.remove(s, project))
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    return await run_in_threadpool(submit)


@router.get("/jobs/{job_id}")
async def job_page(call: PortalCaller, job_id: JobId) -> Response:
    def read() -> Response:
        job = call.server.jobs.readable(call.identity, job_id)
        return page("job.html", me=call.identity, csrf=call.csrf, job=job,
                    events=call.server.jobs.jobs.events(job.id))

    return await run_in_threadpool(read)


@router.get("/jobs/{job_id}/events")
def job_events(request: Request, call: PortalCaller, job_id: JobId,
               after: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0) -> StreamingResponse:
    """The events after ``after`` (the page shows those before), or after the
    ``Last-Event-ID`` a reconnecting browser sends."""
    job = call.server.jobs.readable(call.identity, job_id)
    given = request.headers.get("last-event-id", "")
    after = int(given) if given.isdigit() and len(given) < 10 else after
    return StreamingResponse(_job_stream(call.server, job.id, after),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _job_stream(server: ServerState, job_id: str, after: int) -> AsyncIterator[str]:
    """The job's events after ``after`` as list items, then its end."""
    jobs: Jobs = server.jobs.jobs
    while True:
        job = await run_in_threadpool(jobs.get, job_id)
        for event in await run_in_threadpool(jobs.events, job_id, after):
            after = event.seq
            yield f"id: {event.seq}\n" + sse("event", render("_job_event.html", event=event))
        if job is None or job.finished:
            yield sse("end", render("_job_end.html", job=job))
            return
        await asyncio.sleep(POLL_S)

"""A VM's page (``/vms/PROJECT.HOST``): its status row, its domain, and its actions.

The actions are the API's VM verbs, calling the same operations
(:mod:`corral.ops.vms`; start is the project's start of that one host, as a
job), authorised the same way (:func:`corral.ops.access.authorize_action`):
a read-only sharer sees no controls, and is refused (403, audited) if they
post one anyway; a project the user may not see is "not found", as in the
API. Destroy asks first. Posted by htmx, an action answers with a notice
for the page; posted as a plain form, with the VM's page. The page's details
and actions follow the VM live (``/vms/PROJECT.HOST/events``), like the
overview.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Form, Path, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from corral.errors import CorralError, NotFoundError
from corral.ops import projects, vms
from corral.ops.access import authorize_action
from corral.ops.status import StatusRow
from corral.ops.visible import visible_status
from corral.server.context import Call
from corral.server.portal.feed import refreshes, sse
from corral.server.portal.guard import (
    PortalCall,
    PortalCaller,
    is_htmx,
    may,
    portal_router,
    still_logged_in,
)
from corral.server.portal.render import page, render
from corral.server.portal.sessions import LoggedIn
from corral.server.state import ServerState

router = portal_router()
log = logging.getLogger("corral.server.portal")
Target = Annotated[str, Path(max_length=401)]
Action = Literal["start", "shutdown", "reboot", "pause", "resume", "suspend", "restore",
                 "destroy"]
SHUTDOWN_TIMEOUT_S = 60.0
# What each state offers; the rest would be refused by libvirt anyway.
OFFERED: dict[str, tuple[str, ...]] = {
    "running": ("shutdown", "reboot", "pause", "suspend", "destroy"),
    "paused": ("resume", "destroy"),
    "shutoff": ("start",),
    "suspended": ("restore", "start"),
    "crashed": ("start", "destroy"),
}


@dataclass(frozen=True)
class VmView:
    """What the live part of a VM's page shows: its row and the actions offered."""

    row: StatusRow
    writable: bool
    offered: tuple[str, ...]


def vm_view(call: Call, target: str) -> VmView:
    """The VM's status row (authorised as ``vm.describe``, a refusal audited) and
    the actions its state offers to this user."""
    project, host = vms.parse_target(target)
    call.authorize(project, "vm.describe")
    report = visible_status(call.session, project, site_reading=call.server.site_status)
    for row in report.rows:
        if row.host == host:
            writable = may(call.session, project, "vm.reboot")
            return VmView(row, writable, OFFERED.get(row.state, ()) if writable else ())
    raise NotFoundError(f"no VM '{target}'")


def _details(call: PortalCall, target: str, notice: str | None = None,
             status: int = 200) -> Response:
    view = vm_view(call, target)
    try:
        xml = vms.vm_describe(call.session, target) if view.row.state != "absent" else ""
    except NotFoundError:
        xml = ""
    return page("vm.html", status=status, me=call.identity, csrf=call.csrf, view=view,
                row=view.row, target=target, xml=xml, notice=notice)


@router.get("/vms/{target}")
async def vm_page(call: PortalCaller, target: Target) -> Response:
    return await run_in_threadpool(_details, call, target)


@router.get("/vms/{target}/events")
def vm_events(request: Request, call: PortalCaller, target: Target) -> StreamingResponse:
    """The live part of the VM's page again at every change and every few seconds,
    while the session lasts and the user may see the VM."""
    call.authorize(vms.parse_target(target)[0], "vm.describe")
    return StreamingResponse(_stream(call.server, request, target),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _stream(server: ServerState, request: Request, target: str) -> AsyncIterator[str]:
    async with server.live.subscribe() as changes:
        ticks = refreshes(changes)
        while True:
            found = await run_in_threadpool(still_logged_in, server, request)
            if found is None:
                yield sse("ended", render("_ended.html"))
                return

            def read(logged: LoggedIn = found) -> str:
                with server.session(logged.identity) as session:
                    view = vm_view(Call(server, session, logged.identity), target)
                return render("_vm_live.html", view=view, row=view.row, target=target,
                              csrf=logged.csrf)

            try:
                html = await run_in_threadpool(read)
            except NotFoundError:  # gone, or no longer the user's to see
                yield sse("ended", render("_vm_gone.html", target=target))
                return
            except CorralError as error:
                log.warning("%s not read: %s", target, error.message)
            else:
                yield sse("details", html)
            await anext(ticks)


@router.get("/vms/{target}/log")
async def vm_log(call: PortalCaller, target: Target) -> Response:
    def read() -> str:
        call.authorize(vms.parse_target(target)[0], "vm.log")
        return vms.vm_console_log(call.session, target)

    text = await run_in_threadpool(read)
    return page("vm_log.html", me=call.identity, csrf=call.csrf, target=target, log=text)


def _act(call: PortalCall, target: str, action: str) -> str:
    """Run ``action`` as the API's route does; what happened, for the notice."""
    project, host = vms.parse_target(target)
    if action == "start":
        call.authorize(project, "start")
        job = call.server.jobs.submit(call.identity, "start", project,
                                      lambda s: projects.start(s, project, [host], wait=False))
        return f"{target}: starting (job {job.id[:8]})"
    with call.audited(f"vm.{action}", target):
        authorize_action(call.session, call.identity, project, f"vm.{action}")
        if action == "shutdown":
            done = vms.vm_shutdown(call.session, target, SHUTDOWN_TIMEOUT_S)
        else:
            done = vms.vm_action(call.session, target, action)
    return f"{target}: {done.outcome}"


def _answer(request: Request, call: PortalCall, target: str, notice: str) -> Response:
    if is_htmx(request):
        return page("_notice.html", notice=notice)
    return _details(call, target, notice)


@router.post("/vms/{target}/actions/{action}")
async def vm_action(request: Request, call: PortalCaller, target: Target, action: Action,
                    confirm: Annotated[str, Form(max_length=10)] = "") -> Response:
    if action == "destroy" and confirm != "yes":
        call.authorize(vms.parse_target(target)[0], "vm.destroy")
        return page("vm_confirm.html", me=call.identity, csrf=call.csrf, target=target)
    notice = await run_in_threadpool(_act, call, target, action)
    if action == "destroy" and not is_htmx(request):
        return RedirectResponse(f"/vms/{target}", status_code=303)
    return await run_in_threadpool(_answer, request, call, target, notice)


@router.post("/vms/{target}/memory")
async def vm_memory(request: Request, call: PortalCaller, target: Target,
                    memory: Annotated[str, Form(max_length=40)]) -> Response:
    def change() -> str:
        with call.audited("vm.mem-set", target):
            authorize_action(call.session, call.identity, vms.parse_target(target)[0],
                             "vm.mem-set")
            done = vms.vm_set_memory(call.session, target, memory)
        return f"{target}: memory {done.outcome}"

    notice = await run_in_threadpool(change)
    return await run_in_threadpool(_answer, request, call, target, notice)


@router.post("/vms/{target}/vcpus")
async def vm_vcpus(request: Request, call: PortalCaller, target: Target,
                   count: Annotated[int, Form(ge=1, le=4096)]) -> Response:
    def change() -> str:
        with call.audited("vm.vcpu-set", target):
            authorize_action(call.session, call.identity, vms.parse_target(target)[0],
                             "vm.vcpu-set")
            done = vms.vm_set_vcpus(call.session, target, count)
        return f"{target}: {done.outcome}"

    notice = await run_in_threadpool(change)
    return await run_in_threadpool(_answer, request, call, target, notice)

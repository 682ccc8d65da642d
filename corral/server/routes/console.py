"""``corral vm console`` through the server: a VM's serial console over a websocket.

``/api/v1/vms/{target}/console`` is a websocket authenticated like every
route (``Authorization: Bearer TOKEN`` in the handshake's headers, through
the same credential readers) and authorised as ``vm.console``, a write action
on the VM's project. A refusal is answered before the websocket opens, with
the status and error body of any other route (401, 403, 404: a hidden
project is "not found"), using the ASGI websocket denial response. Once
open, the bytes the guest prints are sent as binary messages and every
message received is typed on the console, until either side closes. Opening
the console is an entry of the audit log.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import ExitStack, suppress
from typing import cast
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.websockets import WebSocketDisconnect

from corral.backends.base import ConsoleStream
from corral.errors import CorralError, Forbidden, InvalidRequest
from corral.ops import vms
from corral.ops.access import authorize_action
from corral.server.context import call_on_thread
from corral.server.errors import error_response

router = APIRouter(tags=["vms"])
MAX_TARGET = 401


def _open(websocket: WebSocket, target: str, stack: ExitStack) -> ConsoleStream:
    """Authenticate (as every route), authorise and open the console, audited;
    raises CorralError."""
    _same_origin(websocket)
    # The credential readers read the headers, client and app of the request,
    # which the websocket's handshake has as well (both are HTTP connections).
    call = stack.enter_context(call_on_thread(cast(Request, websocket)))
    if len(target) > MAX_TARGET:
        raise InvalidRequest("invalid request: path.target: too long")
    with call.audited("vm.console", target) as note:
        project, _host = vms.parse_target(target)
        authorize_action(call.session, call.identity, project, "vm.console")
        stream = vms.vm_console_stream(call.session, target)
        note.detail = "console opened"
    stack.callback(stream.close)
    return stream


def _same_origin(websocket: WebSocket) -> None:
    """A browser says which page opens a websocket (``Origin``) and sends its cookies
    along whatever the page: a console opened from another site's page is refused,
    so no page elsewhere can type on a VM with a portal user's session. Clients that
    are not browsers send no Origin."""
    origin = websocket.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != websocket.headers.get("host"):
        raise Forbidden(f"a console cannot be opened from a page of another site ({origin})")


@router.websocket("/vms/{target}/console")
async def console(websocket: WebSocket, target: str) -> None:
    with ExitStack() as stack:
        try:
            stream = await run_in_threadpool(_open, websocket, target, stack)
        except CorralError as error:
            await websocket.send_denial_response(error_response(error))
            return
        await websocket.accept()
        await _bridge(websocket, stream)


async def _bridge(websocket: WebSocket, stream: ConsoleStream) -> None:
    """Bytes both ways until the guest's side or the client's ends."""

    async def guest_to_client() -> None:
        # A console waits for its guest for as long as it is open: on a thread of its
        # own, not one of the pool that serves the other routes.
        loop = asyncio.get_running_loop()
        printed: asyncio.Queue[bytes] = asyncio.Queue()

        def pump() -> None:
            while True:
                data = stream.read()
                try:
                    loop.call_soon_threadsafe(printed.put_nowait, data)
                except RuntimeError:  # the server's loop has ended
                    return
                if not data:
                    return

        threading.Thread(target=pump, name="corral-console", daemon=True).start()
        while data := await printed.get():
            await websocket.send_bytes(data)

    async def client_to_guest() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes") or (message.get("text") or "").encode()
                if data:
                    await run_in_threadpool(stream.write, data)
        except WebSocketDisconnect:
            return

    tasks = [asyncio.create_task(guest_to_client()), asyncio.create_task(client_to_guest())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stream.close()  # the read waiting on its thread returns
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with suppress(RuntimeError):  # the client closed first
            await websocket.close()

"""Which client addresses may talk to the server at all: ``[server] allowed_networks``.

Checked before anything else, authentication included: a client from
elsewhere gets 403 and an audit entry (``connect``, refused, with its
address), and its request goes no further.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.errors import Outcome

Refused = Callable[[str, str], None]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def allowed(address: str, networks: Sequence[Network]) -> bool:
    """Whether ``address`` is in one of ``networks``; an address that is not an IP
    address (a Unix socket, a test client without one) is not."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in networks)


class AllowedNetworks:
    """ASGI middleware: requests from outside ``networks`` end here with 403;
    ``refused(address, path)`` records each one."""

    def __init__(self, app: ASGIApp, networks: Sequence[str], refused: Refused) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else ""
        if allowed(address, self.networks):
            await self.app(scope, receive, send)
            return
        await run_in_threadpool(self.refused, address or "unknown", scope.get("path", ""))
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({
            "error": f"address {address or 'unknown'} is not in the server's allowed networks",
            "kind": "forbidden", "exit_code": Outcome.FORBIDDEN.exit_code, "hint": None,
        }).encode()
        await send({"type": "http.response.start", "status": Outcome.FORBIDDEN.http_status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

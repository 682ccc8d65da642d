"""Running the server: one uvicorn process on the listen address, plain or TLS."""

from __future__ import annotations

import gc
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from corral.config import SiteConfig
from corral.errors import ConflictError, InvalidRequest

GRACE_S = 5
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})")


@dataclass(frozen=True, slots=True)
class Listen:
    """Where the server listens: an address (IPv4, IPv6 or a name) and a port."""

    host: str
    port: int

    def url(self, tls: bool) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if tls else 'http'}://{host}:{self.port}"


def parse_listen(text: str) -> Listen:
    """``ADDR:PORT`` (``[::1]:8080`` for IPv6); InvalidRequest when malformed."""
    host, colon, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidRequest(f"listen address '{text}': give ADDRESS:PORT, e.g. 127.0.0.1:8080 "
                             "or [::1]:8080")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_NAME.fullmatch(host):
            raise InvalidRequest(f"listen address '{text}': '{host}' is neither an IP "
                                 "address nor a host name") from None
    return Listen(host, int(port))


def check_tls(cert: Path | None, key: Path | None) -> None:
    """A certificate and its key come together, and both must be readable files."""
    if (cert is None) != (key is None):
        raise InvalidRequest("give both --tls-cert and --tls-key, or neither")
    for what, path in (("certificate", cert), ("key", key)):
        if path is not None and not path.is_file():
            raise InvalidRequest(f"TLS {what} {path}: no such file")


def serve(site: SiteConfig, listen: Listen, cert: Path | None = None,
          key: Path | None = None) -> None:
    """Run the server until interrupted (uvicorn handles SIGINT and SIGTERM)."""
    import uvicorn

    from corral.server.app import create_app

    check_tls(cert, key)
    config = uvicorn.Config(
        create_app(site), host=listen.host, port=listen.port,
        ssl_certfile=str(cert) if cert else None, ssl_keyfile=str(key) if key else None,
        proxy_headers=False, server_header=False, log_level="info",
        # Event streams (the portal's live pages, job events) never end by themselves:
        # on SIGTERM they get this long, then the server stops anyway.
        timeout_graceful_shutdown=GRACE_S,
    )
    server = uvicorn.Server(config)
    # What the imports and the app made lives as long as the process: keep the
    # collector from scanning it again. A full collection went over ~160,000 such
    # objects and paused every request for 80-150 ms, every 2 s under load.
    gc.freeze()
    try:
        server.run()
    except SystemExit:
        if server.started:
            raise
        # uvicorn has logged why (the address is in use, or not ours to bind)
        raise ConflictError(f"cannot listen on {listen.host}:{listen.port}",
                            hint="another process may hold the port; see the line above") from None

"""``corral server``: run the management server's REST API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corral.cli.app import app
from corral.cli.state import state_of


@app.command()
def server(
    ctx: typer.Context,
    listen: Annotated[str | None, typer.Option(
        "--listen", help="ADDRESS:PORT to listen on; else [server] listen of corral.toml.")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(
        "--tls-cert", help="PEM certificate (chain) to serve HTTPS with.")] = None,
    tls_key: Annotated[Path | None, typer.Option(
        "--tls-key", help="PEM private key of --tls-cert.")] = None,
) -> None:
    """Run the REST API (/api/v1, docs at /api/docs, /metrics) until interrupted.

    Clients outside [server] allowed_networks are refused; every other request
    needs 'Authorization: Bearer TOKEN' (corral token create).
    Example: corral server --listen 0.0.0.0:8443 --tls-cert c.pem --tls-key k.pem
    """
    from corral.server.serve import check_tls, parse_listen, serve

    state_of(ctx).local_only("server", "it serves the site of this machine")
    site = state_of(ctx).site()
    address = parse_listen(listen or site.server.listen)
    check_tls(tls_cert, tls_key)
    print(f"corral server on {address.url(tls_cert is not None)}/api/v1", flush=True)
    serve(site, address, tls_cert, tls_key)

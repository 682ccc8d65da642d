"""``corral hosts``: every service host, reachable or not, and what it runs."""

from __future__ import annotations

from typing import Annotated

import typer

from corral.cli import render
from corral.cli.app import app
from corral.cli.project_cmds import JsonOpt, _emit_json
from corral.cli.state import operations
from corral.errors import Outcome
from corral.ops.hosts import DEFAULT_TIMEOUT_S


@app.command(name="hosts")
def hosts_(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each service host's answer.")
    ] = DEFAULT_TIMEOUT_S,
) -> Outcome:
    """Every service host: reachability, versions, virt type, CPUs, memory, Corral VMs.

    A host that does not answer within --timeout is shown with the reason and
    the time it last answered; the exit code is then that of a libvirt failure.
    Example: corral hosts --json
    """
    reports = operations(ctx, quiet=as_json).hosts(timeout_s=timeout)
    if as_json:
        _emit_json([r.as_json() for r in reports])
    else:
        render.hosts(reports)
    return Outcome.OK if all(r.reachable for r in reports) else Outcome.BACKEND

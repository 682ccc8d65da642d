"""``--all``: every Corral VM of every project on every service host (DVHMS's ``vmctl``)."""

from __future__ import annotations

import sys

import typer

from corral.cli import render
from corral.cli.app import app
from corral.cli.project_cmds import AllOpt, JsonOpt, OptionalProjectOpt, YesOpt, _emit_json
from corral.cli.state import operations
from corral.errors import ConflictError, InvalidRequest, Outcome


def one_or_all(project: str | None, all_: bool) -> None:
    """A command acts on one project (-p) or on every VM (--all), never both or neither."""
    if all_ == (project is not None):
        raise InvalidRequest("give either -p PROJECT or --all")


def run_all(
    ctx: typer.Context, action: str, *, yes: bool, timeout: float = 60.0, as_json: bool = False,
    project: str | None = None,
) -> Outcome:
    """Survey, confirm (unless ``yes``), act, print; exit 10 when part of it failed."""

    def confirm(vms: int, service_hosts: int) -> None:
        question = f"{action} all {vms} Corral VM(s) on {service_hosts} service host(s)?"
        if not sys.stdin.isatty():
            raise ConflictError(f"refusing to {action} every VM without --yes",
                                hint="no terminal to ask; pass --yes")
        typer.confirm(question, abort=True)

    result = operations(ctx, quiet=as_json).everything(
        action, timeout_s=timeout, project=project,
        confirm=None if yes or project is not None else confirm)
    if as_json:
        _emit_json(result.as_json())
    else:
        render.fleet(result)
    return Outcome.PARTIAL if result.partial else Outcome.OK


@app.command()
def suspend(
    ctx: typer.Context,
    project: OptionalProjectOpt = None,
    all_: AllOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> Outcome:
    """Save running VMs' memory to disk and stop them (managed save); start resumes them.

    Example: corral suspend --all --yes
    """
    one_or_all(project, all_)
    return run_all(ctx, "suspend", yes=yes, as_json=as_json, project=project)

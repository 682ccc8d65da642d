"""Project commands: validate, show, plan, up, build, upgrade, start, stop, remove, status."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from corral.cli import render
from corral.cli.app import app
from corral.cli.state import state_of

ProjectOpt = Annotated[str, typer.Option("--project", "-p", help="Project name.")]
HostOpt = Annotated[
    list[str] | None, typer.Option("--host", "-h", help="Only this host (repeatable).")
]
FileOpt = Annotated[Path, typer.Option("--file", "-f", help="Project file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
RecreateOpt = Annotated[
    bool, typer.Option("--recreate", help="Allow changes that rebuild a host's disk.")
]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Do not wait for guests to be ready.")]


def _emit_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


@app.command()
def validate(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Project files to check.")],
) -> int:
    """Check project files; print every error as FILE:LINE:COL: message.

    Example: corral validate lab.corral course/*.mln
    """
    from corral.ops.projects import validate_files

    results = validate_files(files, state_of(ctx).site())
    failed = 0
    for path, error in results:
        if error is None:
            print(f"{path}: ok")
        else:
            failed += 1
            print(error.render(), file=sys.stderr)
    return 1 if failed else 0


@app.command()
def show(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Project file.")],
    as_json: JsonOpt = False,
) -> None:
    """Print the resolved project (hosts, interfaces, switches).

    Example: corral show lab.corral --json
    """
    from corral.ops.projects import load_file

    project = load_file(file, state_of(ctx).site())
    if as_json:
        _emit_json(project.contract())
    else:
        render.project(project)


@app.command()
def plan(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="Project file.")]) -> int:
    """Show what `up`/`upgrade` would change; exit 0 when nothing would, 2 when something would.

    Example: corral plan lab.corral
    """
    from corral.ops.projects import plan_file

    result = plan_file(state_of(ctx).session(), file)
    print(result.describe())
    return 0 if result.empty else 2


@app.command()
def up(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Project file.")],
    recreate: RecreateOpt = False,
    no_wait: NoWaitOpt = False,
) -> int:
    """Build what is missing, apply changes, start every host and wait until ready.

    Idempotent: rerun it after any interruption and it converges to the file.
    Example: corral up lab.corral
    """
    from corral.ops.projects import up as do_up

    result = do_up(state_of(ctx).session(), file, recreate=recreate, wait=not no_wait)
    render.readiness(result.readiness)
    return 0 if result.ok else 1


@app.command()
def build(
    ctx: typer.Context, file: FileOpt, recreate: RecreateOpt = False
) -> int:
    """Build the project's switches and hosts (run copies, seeds, domains) without starting.

    Example: corral build -f lab.corral
    """
    from corral.ops.projects import build as do_build

    do_build(state_of(ctx).session(), file, recreate=recreate)
    return 0


@app.command()
def upgrade(
    ctx: typer.Context,
    file: FileOpt,
    recreate: RecreateOpt = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete the volumes of disks the file dropped.")
    ] = False,
) -> int:
    """Apply a changed project file: live memory/vcpus, NICs, disks, new and deleted hosts.

    A change that needs a new root disk is refused unless --recreate is given;
    a disk dropped from the file is unplugged and its volume kept until --prune.
    Example: corral upgrade -f lab.corral
    """
    from corral.ops.projects import upgrade as do_upgrade

    result = do_upgrade(state_of(ctx).session(), file, recreate=recreate, prune=prune)
    print(result.describe())
    return 0


@app.command()
def start(
    ctx: typer.Context, project: ProjectOpt, host: HostOpt = None, no_wait: NoWaitOpt = False
) -> int:
    """Start a project's switches and hosts (or only -h HOST) and wait until ready.

    Example: corral start -p lab -h web1
    """
    from corral.ops.projects import start as do_start

    outcomes = do_start(state_of(ctx).session(), project, host or None, wait=not no_wait)
    render.readiness(outcomes)
    return 0 if all(o.ready for o in outcomes) else 1


@app.command()
def stop(
    ctx: typer.Context,
    project: ProjectOpt,
    host: HostOpt = None,
    timeout: Annotated[int, typer.Option(help="Seconds of ACPI shutdown before force.")] = 60,
) -> None:
    """Shut hosts down (ACPI), forcing them off after --timeout seconds.

    Example: corral stop -p lab
    """
    from corral.ops.projects import stop as do_stop

    for line in do_stop(state_of(ctx).session(), project, host or None, timeout_s=timeout):
        print(line)


@app.command(name="list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the projects that exist on the service hosts.

    Example: corral list --json
    """
    from corral.ops.projects import list_projects

    rows = list_projects(state_of(ctx).session())
    if as_json:
        _emit_json([r.as_json() for r in rows])
    else:
        render.projects(rows)


@app.command()
def remove(
    ctx: typer.Context,
    project: ProjectOpt,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> int:
    """Remove a project: its domains, networks and disks. Asks first unless --yes.

    Example: corral remove -p lab --yes
    """
    from corral.ops.projects import describe_removal
    from corral.ops.projects import remove as do_remove

    session = state_of(ctx).session()
    summary = describe_removal(session, project)
    if not yes:
        if not sys.stdin.isatty():
            print(f"{summary}\nrefusing to remove without --yes (no terminal to ask)",
                  file=sys.stderr)
            return 4
        typer.confirm(f"{summary}\nRemove all of this?", abort=True)
    for line in do_remove(session, project):
        print(line)
    return 0


@app.command()
def status(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Project name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """One row per host: state, addresses, uptime, CPU%, memory.

    Example: corral status -p lab --json
    """
    from corral.ops.projects import status as do_status

    rows = do_status(state_of(ctx).session(quiet=as_json), project)
    if as_json:
        _emit_json([r.as_json() for r in rows])
    else:
        render.status(rows)


@app.command()
def info(
    ctx: typer.Context,
    service_host: Annotated[
        str | None, typer.Option("--service-host", "-s", help="Service host name.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Describe a service host: CPUs, memory, libvirt and hypervisor versions, virt type.

    Example: corral info -s local
    """
    from corral.ops.projects import host_info

    facts = host_info(state_of(ctx).session(), service_host)
    if as_json:
        _emit_json(facts)
    else:
        render.facts(facts)

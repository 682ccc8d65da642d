"""Project commands: validate, show, plan, up, build, upgrade, start, stop, remove, status."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from corral.cli import render
from corral.cli.app import PLAN_EPILOG, app
from corral.cli.state import operations
from corral.errors import ConflictError, Outcome

if TYPE_CHECKING:  # the parser and the planner load only for commands that read a file
    from corral.ops.results import ApplyResult

ProjectOpt = Annotated[str, typer.Option("--project", "-p", help="Project name.")]
HostOpt = Annotated[
    list[str] | None, typer.Option(
        "--host", "-h", help="Only this host, or @GROUP: the group's members (repeatable).")
]
FileOpt = Annotated[Path, typer.Option("--file", "-f", help="Project file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
RecreateOpt = Annotated[
    bool, typer.Option("--recreate", help="Allow changes that rebuild a host's disk.")
]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Do not wait for guests to be ready.")]


def _emit_json(data: object) -> None:
    # One write: json.dump would write every token separately (about 50
    # writes per status row).
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


NoWaitLockOpt = Annotated[
    bool,
    typer.Option(
        "--no-wait-lock",
        help="If another operation holds the project, fail at once (exit 4) instead of waiting.",
    ),
]


@app.command()
def validate(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Project files to check.")],
) -> Outcome:
    """Check project files; print every error as FILE:LINE:COL: message.

    Example: corral validate lab.corral course/*.mln
    """
    ops = operations(ctx)
    failed = 0
    for path in files:
        error = ops.validate(path)
        if error is None:
            print(f"{path}: ok")
        else:
            failed += 1
            print(error.render(), file=sys.stderr)
    return Outcome.INVALID_INPUT if failed else Outcome.OK


@app.command()
def show(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Project file.")],
    as_json: JsonOpt = False,
) -> None:
    """Print the resolved project (hosts, interfaces, switches).

    Example: corral show lab.corral --json
    """
    project = operations(ctx).show(file)
    if as_json:
        _emit_json(project.contract())
    else:
        render.project(project)


@app.command(epilog=PLAN_EPILOG)
def plan(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Project file.")],
    as_json: JsonOpt = False,
) -> Outcome:
    """Show what `up`/`upgrade` would change; exit 0 when nothing would, 9 when something would.

    Any error has its own exit code (see below), so a script can tell
    "changes to make" from "could not plan".
    Example: corral plan lab.corral
    """
    from corral.ops.results import plan_as_json

    result = operations(ctx).plan(file)
    if as_json:
        _emit_json(plan_as_json(result))
    else:
        print(result.describe())
    return Outcome.OK if result.empty else Outcome.CHANGES


def _finish(result: ApplyResult, as_json: bool) -> Outcome:
    if as_json:
        _emit_json(result.as_json())
    else:
        render.applied(result)
    if result.partial:
        return Outcome.PARTIAL
    return Outcome.OK if result.ok else Outcome.NOT_READY


@app.command()
def up(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Project file(s).")],
    recreate: RecreateOpt = False,
    no_wait: NoWaitOpt = False,
    no_wait_lock: NoWaitLockOpt = False,
    as_json: JsonOpt = False,
) -> Outcome:
    """Build what is missing, apply changes, start every host and wait until ready.

    Idempotent: rerun it after any interruption and it converges to the file.
    Several files are brought up at once, each project on its own: one that
    fails does not stop the others, and a summary ends the output.
    Exit 8 when a guest did not become ready (each one named with the reason).
    Example: corral up lab.corral     corral up course/group*.corral
    """
    ops = operations(ctx, quiet=as_json)
    if len(files) == 1:
        result = ops.up(files[0], recreate=recreate, wait=not no_wait,
                        wait_lock=not no_wait_lock)
        return _finish(result, as_json)
    many = ops.up_many(files, recreate=recreate, wait=not no_wait, wait_lock=not no_wait_lock)
    if as_json:
        _emit_json(many.as_json())
    else:
        for each in many.results:
            render.applied(each)
        render.many_summary(many)
    if many.failed:
        return next(iter(many.failed.values())).outcome
    if any(r.partial for r in many.results):
        return Outcome.PARTIAL
    return Outcome.OK if many.ok else Outcome.NOT_READY


@app.command()
def build(
    ctx: typer.Context, file: FileOpt, recreate: RecreateOpt = False,
    no_wait_lock: NoWaitLockOpt = False, as_json: JsonOpt = False,
) -> Outcome:
    """Build the project's switches and hosts (run copies, seeds, domains) without starting.

    Example: corral build -f lab.corral
    """
    result = operations(ctx).build(file, recreate=recreate, wait_lock=not no_wait_lock)
    return _finish(result, as_json)


@app.command()
def upgrade(
    ctx: typer.Context,
    file: FileOpt,
    recreate: RecreateOpt = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete the volumes of disks the file dropped.")
    ] = False,
    no_wait_lock: NoWaitLockOpt = False,
    as_json: JsonOpt = False,
) -> Outcome:
    """Apply a changed project file: live memory/vcpus, NICs, disks, new and deleted hosts.

    A change that needs a new root disk is refused unless --recreate is given;
    a disk dropped from the file is unplugged and its volume kept until --prune;
    a change the service host cannot make live takes effect at the guest's next boot.
    Example: corral upgrade -f lab.corral
    """
    result = operations(ctx).upgrade(file, recreate=recreate, prune=prune,
                                     wait_lock=not no_wait_lock)
    return _finish(result, as_json)


AllOpt = Annotated[bool, typer.Option("--all", help="Every VM of every project.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")]
OptionalProjectOpt = Annotated[
    str | None, typer.Option("--project", "-p", help="Project name.")
]


@app.command()
def start(
    ctx: typer.Context, project: OptionalProjectOpt = None, host: HostOpt = None,
    no_wait: NoWaitOpt = False, as_json: JsonOpt = False, all_: AllOpt = False,
    yes: YesOpt = False,
) -> Outcome:
    """Start a project's switches and hosts (or only -h HOST) and wait until ready.

    --all starts every stopped or suspended VM of every project on every
    service host (asking first unless --yes), without waiting.
    Example: corral start -p lab -h web1
    """
    from corral.cli.fleet_cmds import one_or_all, run_all

    one_or_all(project, all_)
    if project is None:
        return run_all(ctx, "start", yes=yes, as_json=as_json)
    result = operations(ctx).start(project, host or None, wait=not no_wait)
    return _finish(result, as_json)


@app.command()
def stop(
    ctx: typer.Context,
    project: OptionalProjectOpt = None,
    host: HostOpt = None,
    timeout: Annotated[int, typer.Option(help="Seconds of ACPI shutdown before force.")] = 60,
    as_json: JsonOpt = False,
    all_: AllOpt = False,
    yes: YesOpt = False,
) -> Outcome:
    """Shut hosts down (ACPI), forcing them off after --timeout seconds.

    --all stops every running VM of every project on every service host, in
    parallel (asking first unless --yes).
    Example: corral stop -p lab
    """
    from corral.cli.fleet_cmds import one_or_all, run_all

    one_or_all(project, all_)
    if project is None:
        return run_all(ctx, "stop", yes=yes, timeout=timeout, as_json=as_json)
    result = operations(ctx).stop(project, host or None, timeout_s=timeout)
    if as_json:
        _emit_json(result.as_json())
    else:
        render.stopped(result)
    return Outcome.PARTIAL if result.partial else Outcome.OK


@app.command(name="list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the projects that exist on the service hosts.

    Example: corral list --json
    """
    rows = operations(ctx).list_projects()
    if as_json:
        _emit_json([r.as_json() for r in rows])
    else:
        render.projects(rows)


@app.command()
def remove(
    ctx: typer.Context,
    project: ProjectOpt,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    no_wait_lock: NoWaitLockOpt = False,
    as_json: JsonOpt = False,
) -> Outcome:
    """Remove a project: its domains, networks and disks. Asks first unless --yes.

    A service host that does not answer keeps its part (exit 10, partly done);
    rerun once it is back.

    Example: corral remove -p lab --yes
    """
    ops = operations(ctx)
    preview = ops.removal(project)
    if not yes:
        summary = render.removal_summary(preview)
        if not sys.stdin.isatty():
            raise ConflictError(f"{summary}\nrefusing to remove without --yes",
                                hint="no terminal to ask; pass --yes")
        typer.confirm(f"{summary}\nRemove all of this?", abort=True)
    result = ops.remove(project, wait_lock=not no_wait_lock)
    if as_json:
        _emit_json(result.as_json())
    else:
        render.removed(result)
    return Outcome.PARTIAL if result.partial else Outcome.OK


@app.command()
def status(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Project name.")] = None,
    as_json: JsonOpt = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each service host's answer.")
    ] = 10.0,
    group: Annotated[str | None, typer.Option(
        "--group", "-g", help="Only the members of this group of the project (needs -p).")] = None,
) -> Outcome:
    """A row per service host (state, uptime, CPU%, memory), then a row per host on
    it: state, addresses, uptime, CPU%, memory, disks.

    Every service host is asked at once; the hosts on one that does not answer
    within --timeout show as unknown, with the time it last answered, and the
    exit code is that of a libvirt failure. --json prints {"rows": [...],
    "service_hosts": [...]}; -g GROUP keeps only the rows of the group's members.
    Example: corral status -p lab --json; corral status -p lab -g cluster
    """
    report = operations(ctx, quiet=as_json).status(project, timeout_s=timeout, group=group)
    if as_json:
        _emit_json(report.as_json())
    else:
        render.status(report)
    return Outcome.BACKEND if report.silent else Outcome.OK


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
    facts = operations(ctx).info(service_host)
    if as_json:
        _emit_json(facts)
    else:
        render.facts(facts)

"""Archive commands: export (a project or one VM into an archive) and import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corral.cli import render
from corral.cli.app import app
from corral.cli.project_cmds import JsonOpt, ProjectOpt, _emit_json
from corral.cli.state import operations, state_of
from corral.errors import Outcome

DirOpt = Annotated[Path, typer.Option("--dir", "-d", help="Directory of the archives.")]
LOCAL_WHY = "it reads and writes archive files of this machine"


@app.command()
def export(
    ctx: typer.Context,
    project: ProjectOpt,
    directory: DirOpt,
    compress: Annotated[bool, typer.Option(
        "-z", "--compress", help="Pack the archive into DIR/PROJECT.tar.gz.")] = False,
    flatten: Annotated[bool, typer.Option(
        "--flatten", help="Standalone run copies: no template in the archive.")] = False,
    host: Annotated[str | None, typer.Option(
        "--host", "-h", help="Only this VM, standalone (flattened disk and domain XML "
        "for virsh define), into DIR/PROJECT-HOST/.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a project (its file, model, domain XML, disks, seeds and templates)
    as an archive in DIR/PROJECT/. A running VM is paused while its disks are read.

    Example: corral export -p lab -d /backups -z
    """
    state_of(ctx).local_only("export", LOCAL_WHY)
    result = operations(ctx, quiet=as_json).export(
        project, directory, compress=compress, flatten=flatten, host=host)
    if as_json:
        _emit_json(result.as_json())
    else:
        render.exported(result)


@app.command(name="import")
def import_(
    ctx: typer.Context,
    project: ProjectOpt,
    directory: DirOpt,
    new_name: Annotated[str | None, typer.Option(
        "--as", help="Recreate it under this project name.")] = None,
    service_host: Annotated[str | None, typer.Option(
        "--service-host", "-s", help="Put every VM on this service host.")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Remove an existing project of that name first.")] = False,
    as_json: JsonOpt = False,
) -> Outcome:
    """Recreate an exported project from DIR/PROJECT/ (or DIR/PROJECT.tar.gz),
    its project file written to DIR/NAME.project/. Every file's checksum is
    checked first; the VMs are built, not started.

    Example: corral import -p lab -d /backups --as lab2 --service-host h2
    """
    state_of(ctx).local_only("import", LOCAL_WHY)
    result = operations(ctx, quiet=as_json).import_project(
        project, directory, new_name=new_name, service_host=service_host, replace=replace)
    if as_json:
        _emit_json(result.as_json())
    else:
        render.imported(result)
    return Outcome.PARTIAL if result.applied.failed else Outcome.OK

"""``corral ssh`` and ``corral ssh-config``: the guests' shells without looking
up addresses or users (:mod:`corral.ops.reach`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

from corral.cli.app import app
from corral.cli.project_cmds import JsonOpt, _emit_json
from corral.cli.state import operations
from corral.errors import InvalidRequest, NotFoundError
from corral.ops.reach import ssh_command, ssh_config

User = Annotated[str | None, typer.Option("--login", "-l", help="Log in as this user.")]
Key = Annotated[Path | None, typer.Option(
    "--identity", "-i", help="The private key to log in with.", exists=True, dir_okay=False)]


@app.command(name="ssh")
def ssh(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="PROJECT.HOST", metavar="PROJECT.HOST")],
    command: Annotated[list[str] | None, typer.Argument(
        help="A command to run there instead of a shell (after --).")] = None,
    login: User = None,
    identity: Key = None,
) -> None:
    """Open SSH to a guest: its address from the file or its DHCP lease, the user
    the project gave a key to (root first), or -l USER.

    Example: corral ssh lab.web -- uptime
    """
    project, _, host = target.partition(".")
    if not project or not host:
        raise InvalidRequest(f"'{target}' is not PROJECT.HOST")
    found = operations(ctx).ssh_targets(project, host, login)
    argv = ssh_command(found[0], identity, list(command or []))
    if shutil.which("ssh") is None:
        raise NotFoundError("ssh is not installed", hint="install openssh-client")
    os.execvp(argv[0], argv)


@app.command(name="ssh-config")
def ssh_config_(
    ctx: typer.Context,
    project: Annotated[str, typer.Option("--project", "-p", help="The project.")],
    login: User = None,
    identity: Key = None,
    as_json: JsonOpt = False,
) -> None:
    """Print an OpenSSH configuration block per guest (`Host PROJECT.HOST`), for
    ~/.ssh/config or `ssh -F`.

    Example: corral ssh-config -p lab >> ~/.ssh/config
    """
    found = operations(ctx, quiet=as_json).ssh_targets(project, None, login)
    if as_json:
        _emit_json([t.as_json() for t in found])
    else:
        print(ssh_config(found, identity), end="")

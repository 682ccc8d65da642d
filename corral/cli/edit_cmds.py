"""``corral set`` and ``corral unset``: change one key of a project file in place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from corral.cli.app import app
from corral.cli.project_cmds import JsonOpt, _emit_json
from corral.cli.state import operations

if TYPE_CHECKING:
    from corral.lang.key_edit import KeyChange

FileArg = Annotated[str, typer.Argument(
    metavar="FILE", help="Project file (through --server: the project's name).")]
PathArg = Annotated[str, typer.Argument(
    metavar="PATH", help="The key: host.web.memory, host.web.network.eth0.address, "
    "global.sshkey.root ...")]


def _report(change: KeyChange, as_json: bool) -> None:
    if as_json:
        _emit_json(change.as_json())
    else:
        print(change.summary())


@app.command(name="set")
def set_(
    ctx: typer.Context,
    file: FileArg,
    path: PathArg,
    values: Annotated[list[str] | None, typer.Argument(
        metavar="[VALUE]...", help="The value's words (none for a flag such as lvm).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set one key of a project file, keeping comments, includes and layout.

    PATH follows the blocks: host.web.memory, host.web.network.eth0.address,
    global.sshkey.root. Each VALUE is one word (none for a flag such as lvm).
    The value replaces the one the file states, or a statement is added to the
    block PATH leads to (with missing labelled blocks such as network eth1).
    The result is checked as `validate` checks a file; nothing is written when
    it does not load (exit 1, every error shown). Through --server, FILE is
    the name of a project, whose file the server keeps.

    Example: corral set lab.corral host.web.memory 256M
    """
    _report(operations(ctx).set_key(file, path, list(values or [])), as_json)


@app.command()
def unset(ctx: typer.Context, file: FileArg, path: PathArg, as_json: JsonOpt = False) -> None:
    """Remove one key (its whole line, with the comment ending it) or a whole block.

    The result is checked as `validate` checks a file; nothing is written when
    it does not load (exit 1, every error shown). Through --server, FILE is
    the name of a project, whose file the server keeps.

    Example: corral unset lab.corral host.web.network.eth1
    """
    _report(operations(ctx).set_key(file, path, None), as_json)

"""``corral inventory``: a project's guests as an Ansible inventory
(:mod:`corral.ops.inventory`, rendered by :mod:`corral.ops.ansible_inventory`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from corral.cli.app import app
from corral.cli.ssh_cmds import Key, User
from corral.cli.state import operations
from corral.ops.ansible_inventory import FORMATS, ansible_inventory


class Format(StrEnum):
    """The inventory formats Ansible reads."""

    YAML = "yaml"
    INI = "ini"
    JSON = "json"


@app.command(name="inventory")
def inventory(
    ctx: typer.Context,
    project: Annotated[str, typer.Option("--project", "-p", help="The project.")],
    output: Annotated[Format, typer.Option(
        "--format", "-f", help="yaml, ini, or json (what an inventory script prints).")
    ] = Format.YAML,
    login: User = None,
    identity: Key = None,
) -> None:
    """Print an Ansible inventory of a project: a group per superclass and per
    switch (switch_NAME), one with every host (project_NAME), each host with
    the address and user corral ssh uses.

    Example: corral inventory -p lab > lab.yml && ansible all -i lab.yml -m ping
    """
    found = operations(ctx, quiet=True).inventory(project, login)
    print(FORMATS[output.value](ansible_inventory(found, identity)), end="")

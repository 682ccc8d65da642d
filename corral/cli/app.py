"""The ``corral`` Typer application: global options and command groups.

Command names follow MLN (``build -f``, ``start -p -h``, ``status``,
``remove``, ``rt``) so its users feel at home; ``-h`` therefore means
*host*, and help is ``--help``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from corral.cli.errors import run_guarded
from corral.cli.state import CliState
from corral.errors import outcome_table

# "\b" keeps click from rewrapping the table into one paragraph.
EXIT_CODES_EPILOG = "Exit codes (the same for every command):\n\n\b\n" + outcome_table()
PLAN_EPILOG = EXIT_CODES_EPILOG

app = typer.Typer(
    name="corral",
    help=(
        "Manage networks of virtual machines on libvirt from one project file.\n\n"
        "Example: corral up lab.corral && corral status -p lab"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    epilog=EXIT_CODES_EPILOG,
    context_settings={"help_option_names": ["--help"]},
)


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Site configuration (corral.toml); else $CORRAL_CONFIG, "
            "/etc/corral/corral.toml, ~/.config/corral/corral.toml, built-in defaults."
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server", envvar="CORRAL_SERVER", show_envvar=False, metavar="URL",
            help="Run every command through this management server's API "
            "(https://HOST:PORT); else $CORRAL_SERVER. The token comes from $CORRAL_TOKEN "
            "or --token-file, never the command line.",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", envvar="CORRAL_TOKEN_FILE", show_envvar=False,
                     metavar="FILE",
                     help="File holding the API token for --server; else $CORRAL_TOKEN_FILE, "
                     "else $CORRAL_TOKEN."),
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option("--ca-cert", envvar="CORRAL_CA_CERT", show_envvar=False, metavar="FILE",
                     help="PEM certificate to trust for an https --server; else "
                     "$CORRAL_CA_CERT, else the system's trust store."),
    ] = None,
) -> None:
    """Manage networks of virtual machines on libvirt from one project file."""
    from corral.client.transport import Remote

    remote = Remote.of(server, token_file, ca_cert) if server else None
    ctx.obj = CliState(config_path=config, remote=remote)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    # Imported for their side effect of adding commands to ``app``.
    from corral.cli import (  # noqa: F401
        archive_cmds,
        convert_cmds,
        edit_cmds,
        fleet_cmds,
        host_cmds,
        inventory_cmds,
        project_cmds,
        server_cmds,
        ssh_cmds,
        template_cmds,
        user_cmds,
        vm_cmds,
    )


def run() -> None:
    """Console-script entry point."""
    _register()
    code = run_guarded(lambda: app(standalone_mode=False))
    sys.exit(code)

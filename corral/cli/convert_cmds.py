"""``corral convert``: another manager's configuration file as a Corral project
(:mod:`corral.ops.convert`). The project goes to stdout or ``-o``; warnings go
to stderr as ``FILE:LINE: warning: ...`` and do not change the exit code."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from corral.cli.app import app
from corral.cli.project_cmds import JsonOpt, _emit_json
from corral.cli.state import operations, state_of
from corral.convert.result import Conversion
from corral.errors import InvalidRequest


class SourceFormat(StrEnum):
    """The formats ``corral convert`` reads."""

    DVHMS = "dvhms"
    LCFG = "lcfg"
    VMGEN = "vmgen"


@app.command()
def convert(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The other manager's configuration file.")],
    source_format: Annotated[SourceFormat | None, typer.Option(
        "--from", help="The source's format; else detected from its text.")] = None,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write the project here instead of stdout.")] = None,
    site_config: Annotated[Path | None, typer.Option(
        "--site-config", help="Write the service hosts the source names here (TOML for "
        "corral.toml).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Convert a DVHMS XML configuration, lcfg-xen resources or a vmgen INI file into
    a Corral project. What Corral cannot carry over is listed as warnings naming
    the source line.

    Example: corral convert vhms.xml -o lab.corral --site-config hosts.toml
    Example: corral convert lab.ini --from vmgen -o lab.corral
    """
    state_of(ctx).local_only("convert", "it reads and writes files of this machine")
    for target in (output, site_config):
        if target is not None and target.resolve() == file.resolve():
            raise InvalidRequest(f"{target}: is the file being converted; write elsewhere")
    chosen = source_format.value if source_format is not None else None
    result = operations(ctx, quiet=True).convert(file, chosen)
    if output is not None:
        _write(output, result.project)
    if site_config is not None and result.site_config is not None:
        _write(site_config, result.site_config)
    for warning in result.warnings:
        print(warning.render(str(file)), file=sys.stderr)
    if as_json:
        _emit_json(result.as_json())
    elif output is None:
        sys.stdout.write(result.project)
    _note_fragment(result, file, site_config)


def _note_fragment(result: Conversion, file: Path, site_config: Path | None) -> None:
    if result.site_config is not None and site_config is None:
        print(f"{file}: note: the source names service hosts; write their site-config "
              "fragment with --site-config FILE", file=sys.stderr)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise InvalidRequest(f"{path}: cannot write: {error.strerror or error}") from None

"""Run Debian's cloud-init on many seeds in one process (executed by /usr/bin/python3).

Each ``cloud-init`` command costs about half a second to start, so the tests
hand this script a directory of seeds (``NAME/user-data``,
``NAME/network-config``) and it calls, for each, the very functions the
commands run:

* ``cloud-init schema --config-file F``: ``validate_cloudconfig_file(F,
  get_schema())`` (what ``handle_schema_args`` does); a schema error or a
  deprecation is a failure, reported with the ``--annotate`` text;
* ``cloud-init devel net-convert -p F -k yaml -O KIND -D DISTRO -d DIR``:
  ``net_convert.handle_args`` with the arguments its own parser reads from
  that command line; ENI, netplan and networkd for Debian, sysconfig for RHEL
  (cloud-init has no sysconfig templates for Debian);
* the runcmd script: ``util.shellify(runcmd)``, the text cc_runcmd writes and
  the final stage runs with ``/bin/sh``.

It prints one JSON object: ``{NAME: {"schema": null or text, "rendered":
{KIND: {PATH: TEXT}}, "render_errors": {KIND: text}, "runcmd": text}}``.
This file must run under the system python, so it imports only cloud-init
and the standard library.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import sys
import tempfile
from pathlib import Path

import yaml
from cloudinit import distros, util
from cloudinit.cmd.devel import net_convert
from cloudinit.config.schema import (
    SchemaValidationError,
    get_schema,
    validate_cloudconfig_file,
)

RENDERERS = (
    ("eni", "debian"),
    ("netplan", "debian"),
    ("networkd", "debian"),
    ("sysconfig", "rhel"),
)
_PRISTINE: dict[str, dict] = {}


def schema_problem(path: Path, schema: dict) -> str | None:
    """None when ``cloud-init schema --config-file path`` would say it is valid."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            validate_cloudconfig_file(str(path), schema)
    except (SchemaValidationError, RuntimeError) as error:
        annotated = io.StringIO()
        with contextlib.redirect_stdout(annotated), contextlib.suppress(Exception):
            validate_cloudconfig_file(str(path), schema, annotate=True)
        return f"{error}\n{annotated.getvalue()}"
    if printed.getvalue().strip():  # deprecations are printed, not raised
        return printed.getvalue()
    return None


def render(path: Path, kind: str, distro: str) -> dict[str, str]:
    # handle_args edits the distro class's renderer_configs in place (it trims
    # netplan_path once per call): give every call the pristine settings.
    distro_class = distros.fetch(distro)
    pristine = _PRISTINE.setdefault(distro, copy.deepcopy(distro_class.renderer_configs))
    distro_class.renderer_configs = copy.deepcopy(pristine)
    with tempfile.TemporaryDirectory() as out:
        args = net_convert.get_parser().parse_args(
            ["-p", str(path), "-k", "yaml", "-O", kind, "-D", distro, "-d", out]
        )
        with contextlib.redirect_stderr(io.StringIO()):
            net_convert.handle_args("net-convert", args)
        args.network_data.close()
        root = Path(out)
        return {
            "/" + str(file.relative_to(root)): file.read_text()
            for file in sorted(root.rglob("*"))
            if file.is_file()
        }


def check(seed: Path, schema: dict) -> dict:
    result: dict = {"schema": schema_problem(seed / "user-data", schema)}
    result["rendered"], result["render_errors"] = {}, {}
    for kind, distro in RENDERERS:
        try:
            result["rendered"][kind] = render(seed / "network-config", kind, distro)
        except Exception as error:  # reported to the test, which fails on it
            result["render_errors"][kind] = f"{type(error).__name__}: {error}"
    config = yaml.safe_load((seed / "user-data").read_text())
    runcmd = config.get("runcmd") if isinstance(config, dict) else None
    result["runcmd"] = util.shellify(runcmd) if runcmd else None
    return result


def main() -> None:
    schema = get_schema()
    seeds = sorted(p for p in Path(sys.argv[1]).iterdir() if p.is_dir())
    json.dump({seed.name: check(seed, schema) for seed in seeds}, sys.stdout)


if __name__ == "__main__":
    main()

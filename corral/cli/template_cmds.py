"""Template commands: add (rt), list, remove, build, copies."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from corral.cli import render
from corral.cli.app import app
from corral.cli.project_cmds import JsonOpt, _emit_json
from corral.cli.state import operations, state_of
from corral.errors import InvalidRequest, Outcome

template = typer.Typer(
    help="Registered, read-only base images that hosts are cloned from.\n\n"
    "Example: corral template add debian12 debian-12.qcow2",
    no_args_is_help=True,
    context_settings={"help_option_names": ["--help"]},
)
app.add_typer(template, name="template")


@template.command()
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Template name used by `template NAME`.")],
    file: Annotated[Path | None, typer.Argument(help="Disk image (any qemu-img format).")] = None,
    kernel: Annotated[Path | None, typer.Option(help="Kernel for direct boot.")] = None,
    initrd: Annotated[Path | None, typer.Option(help="Initrd for direct boot.")] = None,
    cmdline: Annotated[str | None, typer.Option(help="Kernel command line.")] = None,
    disk_boots: Annotated[
        bool, typer.Option("--disk-boots", help="The disk also boots (for `hvm` hosts).")
    ] = False,
) -> None:
    """Register a template (copied in, checksummed, read-only from then on).

    Example: corral template add debian12 debian-12-generic.qcow2
    """
    state_of(ctx).local_only("template add", "it registers image files of this machine; "
                             "a server registers files of its own machine")
    tpl = operations(ctx).add_template(name, file, kernel, initrd, cmdline,
                                       disk_boots=disk_boots)
    print(f"template {tpl.name} registered ({tpl.kind}, {tpl.format or 'no disk'})")


app.command(name="rt", help="Alias of `template add`.\n\nExample: corral rt debian12 d.qcow2")(add)


@template.command(name="list")
def list_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List registered templates: OS, release, size, packages, checksum, and the
    projects whose hosts use each (service hosts that do not answer are warned of).

    Example: corral template list --json
    """
    rows = operations(ctx, quiet=as_json).templates()
    if as_json:
        json.dump([r.as_json() for r in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render.templates(rows)


@template.command()
def remove(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Unregister a template; refused while any host uses it.

    Example: corral template remove debian12
    """
    operations(ctx).remove_template(name)
    print(f"template {name} removed")


@template.command()
def build(
    ctx: typer.Context,
    builder: Annotated[str, typer.Argument(help="Which builder: `tiny` or `debian`.")],
    name: Annotated[str | None, typer.Option(
        help="Register it under this name (default: `tiny`, `debian-RELEASE`, "
        "`debian-RELEASE-rootfs`).")] = None,
    release: Annotated[str | None, typer.Option(
        help="debian: the Debian release (bookworm, trixie).")] = None,
    packages: Annotated[str | None, typer.Option(
        help="debian: more packages to install, comma-separated.")] = None,
    size: Annotated[str | None, typer.Option(
        help="debian: the root disk's size, as 2G (not with --rootfs).")] = None,
    rootfs: Annotated[bool, typer.Option(
        "--rootfs", help="debian: a root filesystem for `lxc` hosts' containers (a tar), "
        "not a VM's disk and kernel.")] = False,
    from_project: Annotated[Path | None, typer.Option(
        "--from-project", help="debian: build the template a host of this project names, "
        "with the host's packages baked in (give --host); a root filesystem for an `lxc` "
        "host.", dir_okay=False)] = None,
    host: Annotated[str | None, typer.Option(
        "--host", help="debian: the host of --from-project.")] = None,
) -> None:
    """Build a template from Debian packages and register it.

    `tiny`: busybox and Debian's kernel, booting in seconds. `debian`: Debian
    with systemd, cloud-init, an SSH server and the packages asked for; with
    --rootfs, the same without a kernel, as a container's root filesystem.
    Example: corral template build debian --packages nginx,curl --size 3G
    Example: corral template build debian --rootfs --packages nginx
    Example: corral template build debian --from-project lab.corral --host web
    """
    from corral.ops.templates import DebianOptions

    if (from_project is None) != (host is None):
        raise InvalidRequest("--from-project and --host go together")
    for_host = None if from_project is None or host is None else (from_project, host)
    listed = None if packages is None else [p.strip() for p in packages.split(",") if p.strip()]
    tpl = operations(ctx).build_template(
        builder, name, DebianOptions.given(release, listed, size, rootfs), for_host)
    print(f"template {tpl.name} built and registered")


@template.command()
def copies(
    ctx: typer.Context,
    service_host: Annotated[
        str | None, typer.Option("--service-host", "-s", help="Only this service host.")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Read every copy back and compare its sha256.")
    ] = False,
    as_json: JsonOpt = False,
) -> Outcome:
    """The copies of templates each remote service host holds (uploaded on first use).

    With --verify every copy of a registered template is downloaded and
    hashed; one that differs is reported and deleted (the next use uploads
    it again), and the exit code is that of a libvirt failure.
    Example: corral template copies --verify
    """
    found = operations(ctx, quiet=as_json).template_copies(service_host, verify=verify)
    if as_json:
        _emit_json(found.as_json())
    else:
        render.template_copies(found)
    return Outcome.OK if not (found.problems or found.unreachable) else Outcome.BACKEND

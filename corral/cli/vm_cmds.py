"""Per-VM operations on PROJECT.HOST (xman's set); PROJECT.@GROUP names every member
of a group of the project file, found by the operations (here or on a server)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from corral.cli import render
from corral.cli.app import app
from corral.cli.state import operations
from corral.errors import Outcome
from corral.ops.results import VmBatchResult

vm = typer.Typer(
    help="Operate on one VM, named PROJECT.HOST, or on every member of a group of the "
         "project file, named PROJECT.@GROUP.\n\nExample: corral vm reboot lab.web1",
    no_args_is_help=True,
    context_settings={"help_option_names": ["--help"]},
)
app.add_typer(vm, name="vm")

Target = Annotated[str, typer.Argument(help="PROJECT.HOST, e.g. lab.web1")]
GroupTarget = Annotated[str, typer.Argument(
    help="PROJECT.HOST, e.g. lab.web1, or PROJECT.@GROUP: every member of the group")]
Targets = Annotated[list[str], typer.Argument(
    help="PROJECT.HOST, e.g. lab.web1, or PROJECT.@GROUP (every member of the group); "
         "several act in parallel")]


def _names_group(target: str) -> bool:
    """PROJECT.@GROUP: acted on as several VMs (the operations find the members)."""
    return target.partition(".")[2].startswith("@")


def _many(ctx: typer.Context, targets: list[str], action: str, timeout: float = 60) -> Outcome:
    """Several VMs at once, each failing alone; exit 10 when some failed."""
    return _batch(operations(ctx).vm_action_each(targets, action, timeout))


def _batch(result: VmBatchResult) -> Outcome:
    render.vm_batch(result)
    return Outcome.PARTIAL if result.partial else Outcome.OK


def _one(targets: list[str]) -> bool:
    return len(targets) == 1 and not _names_group(targets[0])


def _simple(action: str, summary: str) -> Callable[[typer.Context, list[str]], Outcome]:
    def command(ctx: typer.Context, targets: Targets) -> Outcome:
        if not _one(targets):
            return _many(ctx, targets, action)
        render.vm_done(operations(ctx).vm_action(targets[0], action))
        return Outcome.OK

    command.__doc__ = (f"{summary}\n\nSeveral VMs (or PROJECT.@GROUP, every member) act in "
                       f"parallel, each failing alone (exit 10).\n"
                       f"Example: corral vm {action} lab.web1 lab.web2")
    return command


for _name, _summary in [
    ("reboot", "Reboot the guest (ACPI)."),
    ("destroy", "Power the guest off at once (its disk is kept)."),
    ("pause", "Pause the guest's CPUs."),
    ("resume", "Resume a paused guest."),
    ("suspend", "Save the guest's memory to disk and stop it (managed save)."),
    ("restore", "Start a suspended guest from its saved memory."),
]:
    vm.command(name=_name)(_simple(_name, _summary))


@vm.command()
def shutdown(
    ctx: typer.Context,
    targets: Targets,
    timeout: Annotated[int, typer.Option(help="Seconds of ACPI shutdown before force.")] = 60,
) -> Outcome:
    """Shut the guest down (ACPI), forcing it off after --timeout seconds.

    Several VMs (or PROJECT.@GROUP, every member) shut down in parallel, each
    failing alone (exit 10).
    Example: corral vm shutdown lab.web1 --timeout 30
    """
    if not _one(targets):
        return _many(ctx, targets, "shutdown", timeout)
    render.vm_done(operations(ctx).vm_shutdown(targets[0], timeout))
    return Outcome.OK


@vm.command(name="mem-set")
def mem_set(
    ctx: typer.Context,
    target: GroupTarget,
    memory: Annotated[str, typer.Argument(help="New memory, e.g. 256M or 1G.")],
) -> Outcome:
    """Set the guest's current memory (live, within its maxmem); PROJECT.@GROUP sets
    every member's, each failing alone (exit 10).

    Example: corral vm mem-set lab.web1 256M
    """
    if _names_group(target):
        return _batch(operations(ctx).vm_set_memory_each([target], memory))
    render.vm_done(operations(ctx).vm_set_memory(target, memory))
    return Outcome.OK


@vm.command(name="vcpu-set")
def vcpu_set(
    ctx: typer.Context,
    target: GroupTarget,
    count: Annotated[int, typer.Argument(help="Number of virtual CPUs.")],
) -> Outcome:
    """Set the guest's number of virtual CPUs (live, within its maxvcpus);
    PROJECT.@GROUP sets every member's, each failing alone (exit 10).

    Example: corral vm vcpu-set lab.web1 2
    """
    if _names_group(target):
        return _batch(operations(ctx).vm_set_vcpus_each([target], count))
    render.vm_done(operations(ctx).vm_set_vcpus(target, count))
    return Outcome.OK


@vm.command()
def describe(ctx: typer.Context, target: Target) -> None:
    """Print the domain's libvirt XML.

    Example: corral vm describe lab.web1
    """
    print(operations(ctx).vm_describe(target))


@vm.command()
def log(ctx: typer.Context, target: Target) -> None:
    """Print what the guest's serial console has shown so far.

    Example: corral vm log lab.web1
    """
    print(operations(ctx).vm_log(target), end="")


@vm.command()
def console(ctx: typer.Context, target: Target) -> None:
    """Attach to the guest's serial console (leave with Ctrl-]).

    With --server the console comes over a websocket of the server.
    Example: corral vm console lab.web1
    """
    operations(ctx).vm_console(target)


@vm.command()
def migrate(
    ctx: typer.Context,
    target: Target,
    service_host: Annotated[str, typer.Argument(help="The service host to move it to.")],
    offline: Annotated[bool, typer.Option(
        "--offline", help="Shut a running guest down, move it stopped, start it there."
    )] = False,
    update_file: Annotated[bool, typer.Option(
        "--update-file/--no-update-file",
        help="Make the project file name the new service host (else: say which line).",
    )] = True,
    timeout: Annotated[int, typer.Option(help="With --offline: seconds of ACPI shutdown "
                                         "before force.")] = 60,
    no_wait_lock: Annotated[bool, typer.Option(
        "--no-wait-lock", help="Fail at once when another operation holds the project."
    )] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Move the VM to another service host: live when it runs (it keeps running), with
    its disks copied unless its storage is shared; a stopped VM moves stopped. Then
    the project file is edited to name the new service host.

    Example: corral vm migrate lab.web1 h2
    """
    from corral.cli.project_cmds import _emit_json

    result = operations(ctx, quiet=as_json).vm_migrate(
        target, service_host, offline=offline, update_file=update_file,
        wait_lock=not no_wait_lock, timeout_s=timeout,
    )
    if as_json:
        _emit_json(result.as_json())
    else:
        render.migrated(result)

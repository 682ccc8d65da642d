"""Per-VM operations on PROJECT.HOST (xman's set)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Annotated

import typer

from corral.cli import render
from corral.cli.app import app
from corral.cli.state import state_of
from corral.errors import BackendError, Outcome

vm = typer.Typer(
    help="Operate on one VM, named PROJECT.HOST.\n\nExample: corral vm reboot lab.web1",
    no_args_is_help=True,
    context_settings={"help_option_names": ["--help"]},
)
app.add_typer(vm, name="vm")

Target = Annotated[str, typer.Argument(help="PROJECT.HOST, e.g. lab.web1")]
Targets = Annotated[
    list[str], typer.Argument(help="PROJECT.HOST, e.g. lab.web1; several act in parallel")
]


def _many(ctx: typer.Context, targets: list[str], action: str, timeout: float = 60) -> Outcome:
    """Several VMs at once, each failing alone; exit 10 when some failed."""
    from corral.ops.vms import vm_action_each

    result = vm_action_each(state_of(ctx).session(), targets, action, timeout_s=timeout)
    render.vm_batch(result)
    return Outcome.PARTIAL if result.partial else Outcome.OK


def _simple(action: str, summary: str) -> Callable[[typer.Context, list[str]], Outcome]:
    def command(ctx: typer.Context, targets: Targets) -> Outcome:
        from corral.ops.vms import vm_action

        if len(targets) > 1:
            return _many(ctx, targets, action)
        render.vm_done(vm_action(state_of(ctx).session(), targets[0], action))
        return Outcome.OK

    command.__doc__ = (f"{summary}\n\nSeveral VMs act in parallel, each failing alone "
                       f"(exit 10).\nExample: corral vm {action} lab.web1 lab.web2")
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

    Several VMs shut down in parallel, each failing alone (exit 10).
    Example: corral vm shutdown lab.web1 --timeout 30
    """
    from corral.ops.vms import vm_shutdown

    if len(targets) > 1:
        return _many(ctx, targets, "shutdown", timeout)
    render.vm_done(vm_shutdown(state_of(ctx).session(), targets[0], timeout))
    return Outcome.OK


@vm.command(name="mem-set")
def mem_set(
    ctx: typer.Context,
    target: Target,
    memory: Annotated[str, typer.Argument(help="New memory, e.g. 256M or 1G.")],
) -> None:
    """Set the guest's current memory (live, within its maxmem).

    Example: corral vm mem-set lab.web1 256M
    """
    from corral.ops.vms import vm_set_memory

    render.vm_done(vm_set_memory(state_of(ctx).session(), target, memory))


@vm.command(name="vcpu-set")
def vcpu_set(
    ctx: typer.Context,
    target: Target,
    count: Annotated[int, typer.Argument(help="Number of virtual CPUs.")],
) -> None:
    """Set the guest's number of virtual CPUs (live, within its maxvcpus).

    Example: corral vm vcpu-set lab.web1 2
    """
    from corral.ops.vms import vm_set_vcpus

    render.vm_done(vm_set_vcpus(state_of(ctx).session(), target, count))


@vm.command()
def describe(ctx: typer.Context, target: Target) -> None:
    """Print the domain's libvirt XML.

    Example: corral vm describe lab.web1
    """
    from corral.ops.vms import vm_describe

    print(vm_describe(state_of(ctx).session(), target))


@vm.command()
def log(ctx: typer.Context, target: Target) -> None:
    """Print what the guest's serial console has shown so far.

    Example: corral vm log lab.web1
    """
    from corral.ops.vms import vm_console_log

    print(vm_console_log(state_of(ctx).session(), target), end="")


@vm.command()
def console(ctx: typer.Context, target: Target) -> None:
    """Attach to the guest's serial console (leave with Ctrl-]).

    Example: corral vm console lab.web1
    """
    from corral.ops.vms import vm_console_command

    argv = vm_console_command(state_of(ctx).session(), target)
    code = subprocess.run(argv, check=False).returncode
    if code not in (0, 1):  # virsh console ends with 1 when the guest goes away
        raise BackendError(f"console of {target} ended with exit code {code}")


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
    from corral.ops.migrate import vm_migrate

    result = vm_migrate(
        state_of(ctx).session(quiet=as_json), target, service_host, offline=offline,
        update_file=update_file, wait_lock=not no_wait_lock, timeout_s=timeout,
    )
    if as_json:
        _emit_json(result.as_json())
    else:
        render.migrated(result)

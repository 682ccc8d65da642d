"""Per-VM operations on ``PROJECT.HOST`` (xman's set), found through libvirt metadata."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

from corral.backends.base import Backend
from corral.errors import BackendError, ConflictError, NotFoundError, SourceErrors
from corral.model.units import parse_size_mib
from corral.ops.observe import sight
from corral.ops.session import Session
from corral.plan import ObservedHost


def parse_target(target: str) -> tuple[str, str]:
    project, dot, host = target.partition(".")
    if not dot or not project or not host:
        raise NotFoundError(
            f"'{target}' does not name a VM", hint="write PROJECT.HOST, e.g. lab.web1"
        )
    return project, host


def find_vm(session: Session, target: str) -> tuple[Backend, ObservedHost]:
    project, host = parse_target(target)
    found = sight(session, project).project.hosts
    seen = found.get(host)
    if seen is None:
        known = ", ".join(f"{project}.{h}" for h in sorted(found)) or "none in that project"
        raise NotFoundError(f"no VM '{target}'", hint=f"known VMs: {known}")
    return session.backend(seen.service_host), seen


_ACTIONS: dict[str, tuple[Callable[[Backend, str], None], str]] = {
    "reboot": (lambda b, d: b.reboot(d), "rebooting"),
    "destroy": (lambda b, d: b.destroy(d), "powered off"),
    "pause": (lambda b, d: b.pause(d), "paused"),
    "resume": (lambda b, d: b.resume(d), "resumed"),
    "suspend": (lambda b, d: b.suspend(d), "suspended (memory saved to disk)"),
    "restore": (lambda b, d: b.restore(d), "restored"),
}


def vm_action(session: Session, target: str, action: str) -> str:
    run, done = _ACTIONS[action]
    backend, seen = find_vm(session, target)
    run(backend, seen.domain)
    _log(session, target, action)
    return f"{target}: {done}"


def vm_shutdown(session: Session, target: str, timeout_s: float) -> str:
    backend, seen = find_vm(session, target)
    outcome = backend.shutdown(seen.domain, timeout_s)
    _log(session, target, "shutdown")
    return f"{target}: {outcome.value.replace('_', ' ')}"


def vm_set_memory(session: Session, target: str, memory: str) -> str:
    try:
        mib = parse_size_mib(memory)
    except (ValueError, SourceErrors) as error:
        raise NotFoundError(f"'{memory}' is not a size", hint="e.g. 256M or 1G") from error
    backend, seen = find_vm(session, target)
    ceiling = seen.model.maxmem_mib or seen.model.memory_mib if seen.model else None
    if ceiling is not None and mib > ceiling:
        raise ConflictError(
            f"{target}: {mib} MiB is above its maximum of {ceiling} MiB",
            hint="raise maxmem in the project file and run corral upgrade",
        )
    backend.set_memory(seen.domain, mib, live=seen.state == "running", config=True)
    _log(session, target, f"mem-set {mib}")
    return f"{target}: memory set to {mib} MiB"


def vm_set_vcpus(session: Session, target: str, count: int) -> str:
    backend, seen = find_vm(session, target)
    backend.set_vcpus(seen.domain, count, live=seen.state == "running", config=True)
    _log(session, target, f"vcpu-set {count}")
    return f"{target}: {count} vCPU(s)"


def vm_describe(session: Session, target: str) -> str:
    backend, seen = find_vm(session, target)
    return backend.describe(seen.domain)


def vm_console_log(session: Session, target: str) -> str:
    backend, seen = find_vm(session, target)
    return backend.console_output(seen.domain)


def vm_console(session: Session, target: str) -> None:
    """Hand the terminal to the console attach command until it exits."""
    backend, seen = find_vm(session, target)
    argv = backend.console_command(seen.domain)
    if shutil.which(argv[0]) is None:
        raise BackendError(f"cannot attach a console: '{argv[0]}' is not installed")
    result = subprocess.run(argv, check=False, env=os.environ.copy())
    if result.returncode not in (0, 1):
        raise BackendError(f"console of {target} ended with exit code {result.returncode}")


def _log(session: Session, target: str, action: str) -> None:
    """Record a VM operation; the project comes from the target, never from the
    domain name, which cannot be split when project names hold hyphens."""
    store = session.store
    if store is not None:
        project, _ = parse_target(target)
        store.log_operation(project, action, target, "ok", "")

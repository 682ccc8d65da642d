"""Per-VM operations on ``PROJECT.HOST`` (xman's set), found through libvirt metadata.

The verbs that act on several VMs at once (``*_each``) also take
``PROJECT.@GROUP``, every member of a group of the project file
(:mod:`corral.ops.groups`); the verbs of one VM refuse it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace

from corral.backends.base import Backend, ConsoleStream
from corral.errors import (
    BackendError,
    ConflictError,
    CorralError,
    InvalidRequest,
    NotFoundError,
    SourceErrors,
)
from corral.model import values
from corral.model.units import parse_size_mib
from corral.ops.groups import GROUP_MARK, expand_targets
from corral.ops.journal import recorded
from corral.ops.observe import Sighting, sight
from corral.ops.results import Failed, VmBatchResult, VmResult
from corral.ops.session import Session
from corral.plan import ObservedHost


def parse_target(target: str) -> tuple[str, str]:
    """``PROJECT.HOST`` split in two; InvalidRequest when it is not written so."""
    project, dot, host = target.partition(".")
    if not dot or not project or not host:
        raise InvalidRequest(
            f"'{target}' does not name a VM", hint="write PROJECT.HOST, e.g. lab.web1"
        )
    if host.startswith(GROUP_MARK):
        raise InvalidRequest(
            f"'{target}' names a group of VMs, and this acts on one VM",
            hint="name one member as PROJECT.HOST; shutdown, reboot, destroy, pause, "
                 "resume, suspend, restore, mem-set and vcpu-set take PROJECT.@GROUP, "
                 "start and stop -h @GROUP",
        )
    for kind, name in (("project", project), ("host", host)):
        try:
            values.name(name)
        except ValueError as error:
            raise InvalidRequest(f"'{target}': {kind} {error}") from None
    return project, host


def find_vm(session: Session, target: str) -> tuple[Backend, ObservedHost]:
    """The VM's backend and domain, from the service hosts that answer: one that
    does not stops nothing unless the VM could be there, then it is named."""
    project, _ = parse_target(target)
    seen = locate(sight(session, project), target)
    return session.backend(seen.service_host), seen


def locate(sighting: Sighting, target: str) -> ObservedHost:
    """``PROJECT.HOST`` in a sighting of its project; NotFoundError when it is not
    there, BackendError naming the service hosts that did not answer when it
    could be on one of them."""
    project, host = parse_target(target)
    found = sighting.project.hosts
    seen = found.get(host)
    if seen is None and sighting.unreachable:
        away = "; ".join(f"{n}: {r}" for n, r in sorted(sighting.unreachable.items()))
        raise BackendError(
            f"VM '{target}' is on no service host that answered, and these did not "
            f"({away})", hint="rerun once they are back; corral hosts shows them",
        )
    if seen is None:
        known = ", ".join(f"{project}.{h}" for h in sorted(found)) or "none in that project"
        raise NotFoundError(f"no VM '{target}'", hint=f"known VMs: {known}")
    return seen


_ACTIONS: dict[str, tuple[Callable[[Backend, str], None], str]] = {
    "reboot": (lambda b, d: b.reboot(d), "rebooting"),
    "destroy": (lambda b, d: b.destroy(d), "powered off"),
    "pause": (lambda b, d: b.pause(d), "paused"),
    "resume": (lambda b, d: b.resume(d), "resumed"),
    "suspend": (lambda b, d: b.suspend(d), "suspended"),
    "restore": (lambda b, d: b.restore(d), "restored"),
}
VM_ACTIONS = tuple(_ACTIONS)


def vm_action(session: Session, target: str, action: str) -> VmResult:
    """``reboot``, ``destroy``, ``pause``, ``resume``, ``suspend`` or ``restore`` a VM."""
    if action not in _ACTIONS:
        raise InvalidRequest(f"no VM action '{action}'", hint=f"actions: {', '.join(_ACTIONS)}")
    run, done = _ACTIONS[action]
    project, _ = parse_target(target)
    mark = session.warning_mark()
    with recorded(session, project, action, target):
        backend, seen = find_vm(session, target)
        run(backend, seen.domain)
    return VmResult(target, action, done, session.warnings_since(mark))


def vm_action_each(
    session: Session, targets: list[str], action: str, *, timeout_s: float = 60
) -> VmBatchResult:
    """``action`` (one of :data:`VM_ACTIONS`, or ``shutdown`` forced after
    ``timeout_s``) on several VMs at once, in parallel, bounded per service host
    and overall; a VM that is not found, or whose service host fails, fails alone.
    A ``PROJECT.@GROUP`` target is every member of the group."""
    if action not in _ACTIONS and action != "shutdown":
        raise InvalidRequest(f"no VM action '{action}'",
                             hint=f"actions: {', '.join([*_ACTIONS, 'shutdown'])}")
    if timeout_s < 0:
        raise InvalidRequest(f"timeout {timeout_s} s is negative")

    def act(backend: Backend, seen: ObservedHost, target: str) -> VmResult:
        if action == "shutdown":
            return VmResult(target, action, backend.shutdown(seen.domain, timeout_s).value)
        run, done = _ACTIONS[action]
        run(backend, seen.domain)
        return VmResult(target, action, done)

    return _each(session, targets, action, action, act)


def vm_set_memory_each(session: Session, targets: list[str], memory: str) -> VmBatchResult:
    """:func:`vm_set_memory` on several VMs (or ``PROJECT.@GROUP``) at once, each failing
    alone."""
    mib = _memory_mib(memory)
    return _each(session, targets, "mem-set", f"mem-set {mib}",
                 lambda backend, seen, target: _set_memory(backend, seen, target, mib))


def vm_set_vcpus_each(session: Session, targets: list[str], count: int) -> VmBatchResult:
    """:func:`vm_set_vcpus` on several VMs (or ``PROJECT.@GROUP``) at once, each failing
    alone."""
    _check_vcpus(count)
    return _each(session, targets, "vcpu-set", f"vcpu-set {count}",
                 lambda backend, seen, target: _set_vcpus(backend, seen, target, count))


def _each(
    session: Session,
    targets: list[str],
    action: str,
    journal: str,
    act: Callable[[Backend, ObservedHost, str], VmResult],
) -> VmBatchResult:
    """``act`` on every VM of ``targets`` (groups expanded), in parallel, bounded per
    service host and overall; each VM logged as ``journal`` and failing alone."""
    parsed = {target: parse_target(target) for target in expand_targets(session, targets)}
    mark = session.warning_mark()
    names = sorted({project for project, _ in parsed.values()})
    sightings = dict(zip(names, session.parallel(lambda p: sight(session, p), names),
                         strict=True))

    def where(target: str) -> str | None:
        seen = sightings[parsed[target][0]].project.hosts.get(parsed[target][1])
        return seen.service_host if seen is not None else None

    def one(target: str) -> VmResult:
        with recorded(session, parsed[target][0], journal, target):
            seen = locate(sightings[parsed[target][0]], target)
            return act(session.backend(seen.service_host), seen, target)

    answers = session.each(one, list(parsed), where=where)
    return VmBatchResult(
        action,
        tuple(a for a in answers if isinstance(a, VmResult)),
        tuple(Failed("host", t, where(t) or "", a.message)
              for t, a in zip(parsed, answers, strict=True) if isinstance(a, CorralError)),
        session.warnings_since(mark),
    )


def vm_shutdown(session: Session, target: str, timeout_s: float) -> VmResult:
    if timeout_s < 0:
        raise InvalidRequest(f"timeout {timeout_s} s is negative")
    project, _ = parse_target(target)
    mark = session.warning_mark()
    with recorded(session, project, "shutdown", target):
        backend, seen = find_vm(session, target)
        outcome = backend.shutdown(seen.domain, timeout_s)
    return VmResult(target, "shutdown", outcome.value, session.warnings_since(mark))


def vm_set_memory(session: Session, target: str, memory: str) -> VmResult:
    mib = _memory_mib(memory)
    project, _ = parse_target(target)
    mark = session.warning_mark()
    with recorded(session, project, f"mem-set {mib}", target):
        backend, seen = find_vm(session, target)
        result = _set_memory(backend, seen, target, mib)
    return replace(result, warnings=session.warnings_since(mark))


def _memory_mib(memory: str) -> int:
    try:
        mib = parse_size_mib(memory)
    except (ValueError, SourceErrors) as error:
        raise InvalidRequest(f"'{memory}' is not a size", hint="e.g. 256M or 1G") from error
    if mib < 1:
        raise InvalidRequest(f"memory {memory} is less than 1 MiB")
    return mib


def _set_memory(backend: Backend, seen: ObservedHost, target: str, mib: int) -> VmResult:
    """Set one VM's memory, live when it runs; refused above its ceiling."""
    ceiling = seen.model.maxmem_mib or seen.model.memory_mib if seen.model else None
    if ceiling is not None and mib > ceiling:
        raise ConflictError(
            f"{target}: {mib} MiB is above its maximum of {ceiling} MiB",
            hint="raise maxmem in the project file and run corral upgrade",
        )
    backend.set_memory(seen.domain, mib, live=seen.state == "running", config=True)
    return VmResult(target, "mem-set", f"{mib} MiB")


def vm_set_vcpus(session: Session, target: str, count: int) -> VmResult:
    _check_vcpus(count)
    project, _ = parse_target(target)
    mark = session.warning_mark()
    with recorded(session, project, f"vcpu-set {count}", target):
        backend, seen = find_vm(session, target)
        result = _set_vcpus(backend, seen, target, count)
    return replace(result, warnings=session.warnings_since(mark))


def _check_vcpus(count: int) -> None:
    if count < 1:
        raise InvalidRequest(f"{count} vCPUs: a guest needs at least one")


def _set_vcpus(backend: Backend, seen: ObservedHost, target: str, count: int) -> VmResult:
    backend.set_vcpus(seen.domain, count, live=seen.state == "running", config=True)
    return VmResult(target, "vcpu-set", f"{count} vCPU(s)")


def vm_describe(session: Session, target: str) -> str:
    backend, seen = find_vm(session, target)
    return backend.describe(seen.domain)


def vm_console_log(session: Session, target: str) -> str:
    backend, seen = find_vm(session, target)
    return backend.console_output(seen.domain)


def vm_console_stream(session: Session, target: str) -> ConsoleStream:
    """The VM's serial console as a stream of bytes both ways (the server's
    websocket console); the caller closes it."""
    backend, seen = find_vm(session, target)
    return backend.console_stream(seen.domain)


def vm_console_command(session: Session, target: str) -> list[str]:
    """The argv that attaches a terminal to the VM's console; the caller runs it
    (the CLI hands it the user's terminal; operations never spawn one)."""
    backend, seen = find_vm(session, target)
    argv = backend.console_command(seen.domain)
    if shutil.which(argv[0]) is None:
        raise BackendError(f"cannot attach a console: '{argv[0]}' is not installed")
    return argv

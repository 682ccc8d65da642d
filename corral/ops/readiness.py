"""Waiting until guests are ready, and saying why when they are not.

"Waiting for an IP" that hangs and says nothing is the most common complaint
about every peer tool. Here each guest is watched for the signal its
``wait`` setting names, all guests at once, and a guest that is not ready in
time is reported with the last thing seen: no DHCP lease, no console output,
the boot error the console printed, or a domain that is not running.

The decision is a pure function (:func:`assess`) of an :class:`Observation`,
so it is tested without booting anything. :func:`settle` turns a verdict and
the guest's own deadline into a final verdict; :mod:`corral.ops.booting`
starts guests a few at a time per service host and polls the ones booting.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from corral.model import Host, WaitKind

READY_LINE = re.compile(r"corral-ready (\S+)")
CLOUD_INIT_DONE = re.compile(r"Cloud-init v\. \S+ finished")
BOOT_ERRORS = (
    re.compile(r"Kernel panic - not syncing: .*"),
    re.compile(r"VFS: Unable to mount root fs.*"),
    re.compile(r"corral-error: .*"),
    re.compile(r"No bootable device.*"),
)


@dataclass(frozen=True, slots=True)
class Target:
    """A guest to wait for: its libvirt domain and what "ready" means for it."""

    host: Host
    domain: str

    @property
    def kind(self) -> WaitKind:
        return self.host.wait.kind

    @property
    def dhcp_macs(self) -> tuple[str, ...]:
        return tuple(i.mac for i in self.host.interfaces if i.address == "dhcp" and i.switch)

    @property
    def static_addresses(self) -> tuple[str, ...]:
        return tuple(i.address for i in self.host.interfaces if i.is_static and i.address)


@dataclass(frozen=True, slots=True)
class Observation:
    state: str
    console: str | None  # None when the backend cannot read the console
    leases: dict[str, list[str]]  # mac -> addresses
    reachable: bool | None = None  # ping/ssh result when that was asked for


@dataclass(frozen=True, slots=True)
class Verdict:
    ready: bool
    reason: str  # why not ready yet (or how it became ready)
    final: bool = False  # no point waiting longer (crashed, boot error)


def assess(target: Target, seen: Observation) -> Verdict:
    """Is this guest ready, and if not, the most telling reason why."""
    if target.kind is WaitKind.NONE:
        return Verdict(True, "not waited for")
    if seen.state not in ("running",):
        return Verdict(False, f"domain is {seen.state}", final=seen.state in ("crashed", "shutoff"))
    error = _boot_error(seen.console)
    if error:
        return Verdict(False, f"boot error on the console: {error}", final=True)
    console_ready = _console_ready(target, seen.console)
    leases_ok, lease_reason = _leases_ready(target, seen.leases)
    if target.kind is WaitKind.CONSOLE:
        return console_ready or Verdict(False, _console_reason(seen.console))
    if target.kind is WaitKind.DHCP:
        return Verdict(True, "DHCP lease") if leases_ok else Verdict(False, lease_reason)
    if target.kind in (WaitKind.PING, WaitKind.SSH):
        what = "ping" if target.kind is WaitKind.PING else "ssh port 22"
        if seen.reachable:
            return Verdict(True, f"answers {what}")
        if not _addresses(target, seen.leases):
            return Verdict(False, lease_reason if target.dhcp_macs else "no address to reach")
        return Verdict(False, f"does not answer {what}")
    # AUTO: the console signal where the console can be read, else the leases.
    if console_ready:
        return console_ready
    if seen.console is None and target.dhcp_macs:
        return Verdict(True, "DHCP lease") if leases_ok else Verdict(False, lease_reason)
    if seen.console is None:
        return Verdict(True, "running (console not readable, no DHCP interface)")
    return Verdict(False, _console_reason(seen.console))


def _boot_error(console: str | None) -> str | None:
    if not console:
        return None
    for pattern in BOOT_ERRORS:
        match = pattern.search(console)
        if match:
            return match.group(0).strip()
    return None


def _console_ready(target: Target, console: str | None) -> Verdict | None:
    if not console:
        return None
    for match in READY_LINE.finditer(console):
        if match.group(1) == target.host.name:
            return Verdict(True, "corral-ready on the console")
    if CLOUD_INIT_DONE.search(console):
        return Verdict(True, "cloud-init finished")
    return None


def _console_reason(console: str | None) -> str:
    if console is None:
        return "console output not readable on this service host"
    if not console.strip():
        return "no console output"
    last = [line for line in console.strip().splitlines() if line.strip()][-1]
    return f"no ready signal yet; console last printed: {last.strip()[:120]!r}"


def _leases_ready(target: Target, leases: dict[str, list[str]]) -> tuple[bool, str]:
    missing = [mac for mac in target.dhcp_macs if not leases.get(mac)]
    if not target.dhcp_macs:
        return True, "no DHCP interface"
    if missing:
        return False, "no DHCP lease for " + ", ".join(missing)
    return True, "DHCP lease"


def _addresses(target: Target, leases: dict[str, list[str]]) -> list[str]:
    found = list(target.static_addresses)
    for mac in target.dhcp_macs:
        found += leases.get(mac, [])
    return found


def reachable(kind: WaitKind, addresses: Sequence[str]) -> bool:
    """One ping or one TCP connect to port 22 on any of the addresses."""
    for address in addresses:
        if kind is WaitKind.PING:
            result = subprocess.run(
                ["ping", "-c", "1", "-W", "1", address], capture_output=True, check=False
            )
            if result.returncode == 0:
                return True
        elif kind is WaitKind.SSH:
            try:
                with socket.create_connection((address, 22), timeout=1):
                    return True
            except OSError:
                continue
    return False


@dataclass(frozen=True, slots=True)
class Outcome:
    """How waiting for one guest ended.

    ``seconds`` counts from the guest's own start (when its start was asked
    for, or when watching began for a guest already running); ``started_s``
    is that moment, counted from when the operation began booting.
    """

    target: Target
    ready: bool
    reason: str
    seconds: float
    started_s: float = 0.0


Observer = Callable[[Sequence[Target]], dict[str, Observation]]


def settle(target: Target, seen: Observation | None, waited_s: float) -> Verdict | None:
    """The final verdict on a guest observed ``waited_s`` after its own start, or
    None while it is worth waiting longer (not ready, not hopeless, in time)."""
    verdict = Verdict(False, "domain not found", final=True) if seen is None else assess(
        target, seen
    )
    if verdict.ready or verdict.final:
        return verdict
    if waited_s >= target.host.wait.timeout_s:
        return Verdict(
            False, f"not ready after {target.host.wait.timeout_s} s: {verdict.reason}", final=True
        )
    return None

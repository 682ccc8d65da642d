"""Deterministic MAC addresses for interfaces a project file gives none.

A MAC is ``52:54:00`` (the QEMU/KVM prefix: unicast, and what libvirt itself
uses) followed by three bytes of ``sha256(project, host, interface)``. The
same file therefore always yields the same MACs, across machines and runs,
which keeps DHCP leases and the plan stable. Two interfaces whose digests
collide (1 in 16.7 million per pair) or that hit a MAC written in the file
are separated deterministically: requests are handled in sorted
(host, interface) order and a colliding one re-hashes with a counter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

MAC_PREFIX = "52:54:00"


@dataclass(frozen=True, slots=True)
class MacRequest:
    """One interface; ``given`` is the normalised MAC from the file, if any."""

    host: str
    interface: str
    given: str | None = None


def derive_mac(project: str, host: str, interface: str, attempt: int = 0) -> str:
    """``52:54:00:xx:xx:xx`` from a digest of the names (and a collision counter)."""
    seed = f"{project}\0{host}\0{interface}\0{attempt}".encode()
    return f"{MAC_PREFIX}:{hashlib.sha256(seed).digest()[:3].hex(':')}"


def assign_macs(project: str, requests: Iterable[MacRequest]) -> dict[tuple[str, str], str]:
    """A MAC for every (host, interface): the given one, else a derived, unused one.

    Given MACs are kept even when two are equal; reporting that is the
    caller's job, since only it knows where they were written.
    """
    pending = sorted(requests, key=lambda r: (r.host, r.interface))
    assigned = {(r.host, r.interface): r.given for r in pending if r.given}
    taken = set(assigned.values())
    for request in pending:
        if request.given:
            continue
        attempt = 0
        mac = derive_mac(project, request.host, request.interface)
        while mac in taken:
            attempt += 1
            mac = derive_mac(project, request.host, request.interface, attempt)
        taken.add(mac)
        assigned[(request.host, request.interface)] = mac
    return {key: mac for key, mac in assigned.items() if mac}

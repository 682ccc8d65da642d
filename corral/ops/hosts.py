"""Service hosts as first-class objects: ``corral hosts`` (MLN's ``daemon_status``).

Every configured service host is asked at once, each within one deadline;
a host that is down or does not answer in time is reported with the reason
and with when it last answered (from the state database), never a hang.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from corral.backends.base import HostInfo
from corral.errors import CorralError
from corral.ops.deadline import NoAnswer, each_within
from corral.ops.session import Session

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class HostFacts:
    """What a service host said about itself (None: not known)."""

    hostname: str | None = None
    libvirt_version: str | None = None
    hypervisor: str | None = None
    hypervisor_version: str | None = None
    virt_type: str | None = None
    containers: bool | None = None  # runs lxc hosts (docs/containers.md)
    cpus: int | None = None
    memory_mib: int | None = None
    memory_free_mib: int | None = None
    corral_vms: int | None = None

    @property
    def memory_used_mib(self) -> int | None:
        if self.memory_mib is None or self.memory_free_mib is None:
            return None
        return self.memory_mib - self.memory_free_mib

    @classmethod
    def from_json(cls, text: str) -> HostFacts:
        """Facts recorded by an earlier reading (unknown keys ignored)."""
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class HostReport:
    """One service host as ``corral hosts`` shows it.

    ``reachable`` False comes with ``error`` (libvirt's reason, or no answer
    in time); ``facts`` are then those of the last good reading, if any, and
    ``last_contact`` says when that was.
    """

    name: str
    uri: str
    reachable: bool
    error: str | None
    last_contact: datetime | None
    facts: HostFacts = HostFacts()

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "uri": self.uri,
            "reachable": self.reachable,
            "error": self.error,
            "last_contact": self.last_contact.isoformat() if self.last_contact else None,
            **asdict(self.facts),
            "memory_used_mib": self.facts.memory_used_mib,
        }


@dataclass(frozen=True)
class _Reading:
    """What a host said when asked: its facts and how many Corral domains it runs."""

    info: HostInfo
    corral_vms: int


def hosts(session: Session, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[HostReport]:
    """Every configured service host, asked in parallel within ``timeout_s``."""
    names = session.service_host_names()

    def read(name: str) -> _Reading:
        backend = session.backend(name)
        return _Reading(backend.host_info(), len(backend.domain_states()))

    answers = each_within(read, names, timeout_s)
    return [_report(session, name, answer) for name, answer in zip(names, answers, strict=True)]


def _report(
    session: Session, name: str, answer: _Reading | BaseException | NoAnswer
) -> HostReport:
    uri = session.site.service_hosts[name].uri
    if isinstance(answer, _Reading):
        facts = _facts(answer)
        remember_contact(session, name, facts)
        return HostReport(name, uri, True, None, datetime.now(UTC), facts)
    if isinstance(answer, CorralError):
        error = answer.message
    elif isinstance(answer, NoAnswer):
        error = str(answer)
    elif isinstance(answer, Exception):
        error = f"{type(answer).__name__}: {answer}"
    else:
        raise answer  # KeyboardInterrupt and the like are not a host's fault
    last, known = last_contact(session, name)
    return HostReport(name, uri, False, error, last, known)


def _facts(reading: _Reading) -> HostFacts:
    info = reading.info
    return HostFacts(
        hostname=info.hostname,
        libvirt_version=info.libvirt_version,
        hypervisor=info.hypervisor,
        hypervisor_version=info.hypervisor_version,
        virt_type=info.virt_type,
        containers="lxc" in info.virt_types,
        cpus=info.cpus,
        memory_mib=info.memory_mib,
        memory_free_mib=info.memory_free_mib,
        corral_vms=reading.corral_vms,
    )


def remember_contact(session: Session, name: str, facts: HostFacts) -> None:
    """Service host ``name`` answered now, with these facts."""
    store = session.store
    if store is None:
        return
    try:
        store.record_contact(name, json.dumps(asdict(facts)))
    except CorralError as error:  # history only: a fault is a warning
        session.warn(f"last contact of {name} not recorded: {error.message}")


def remember_contacts(session: Session, names: Sequence[str]) -> None:
    """Service hosts ``names`` answered now (their known facts kept), in one write."""
    store = session.store
    if store is None or not names:
        return
    try:
        store.touch_contacts(names)
    except CorralError as error:  # history only: a fault is a warning
        session.warn(f"last contact of {', '.join(names)} not recorded: {error.message}")


def last_contact(session: Session, name: str) -> tuple[datetime | None, HostFacts]:
    """When service host ``name`` last answered, and what it said then."""
    store = session.store
    if store is None:
        return None, HostFacts()
    try:
        found = store.last_contact(name)
    except CorralError as error:
        session.warn(f"last contact of {name} not read: {error.message}")
        return None, HostFacts()
    if found is None:
        return None, HostFacts()
    at, facts_json = found
    return at, HostFacts.from_json(facts_json)

"""``corral status``: one row per host of every project, from every service host at once.

Each service host is asked for one survey (one bulk stats call, plus its DHCP
leases) within one deadline. Hosts the recorded project files define but no
service host has are ``absent``; those placed on a service host that did not
answer are ``unknown``, with the time that host last answered: a host that is
down never makes ``status`` hang. Each service host has a row of its own
too (state, uptime, CPU%, memory), read in the same pass (libvirt's node
statistics, see :class:`~corral.backends.base.NodeStats`).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from corral.backends.base import NodeStats, Survey
from corral.errors import CorralError
from corral.model import Host
from corral.ops.deadline import describe_failure, each_within
from corral.ops.hosts import last_contact, remember_contacts
from corral.ops.requests import check_name
from corral.ops.session import Session

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DiskRow:
    """An extra disk of a host as ``status`` shows it: a new disk's size, or the
    existing image file it attaches (``path``; its size is not Corral's)."""

    name: str
    size_mib: int | None
    path: str | None = None


@dataclass(frozen=True)
class StatusRow:
    project: str
    host: str
    state: str
    addresses: list[str]
    service_host: str
    memory_mib: int | None
    vcpus: int | None
    uptime_s: float | None
    cpu_percent: float | None
    disks: list[DiskRow] = field(default_factory=list)  # extra disks, in the file's order
    last_seen: str | None = None  # state unknown: when its service host last answered (ISO)

    def as_json(self) -> dict[str, object]:
        """The row as JSON; a disk's ``path`` only where it attaches an image, so a
        new disk reads as it did before images could be attached."""
        data = asdict(self)
        data["disks"] = [
            {k: v for k, v in disk.items() if k != "path" or v is not None}
            for disk in data["disks"]
        ]
        return data


@dataclass(frozen=True)
class ServiceHostRow:
    """A service host as ``status`` shows it, above its VMs: ``up`` with its load,
    or ``unknown`` with the reason and when it last answered."""

    name: str
    state: str  # up, unknown
    uptime_s: float | None
    cpu_percent: float | None
    cpus: int | None
    memory_mib: int | None
    memory_used_mib: int | None
    vms: int  # the rows below it
    error: str | None = None
    last_seen: str | None = None  # state unknown: when it last answered (ISO)

    def as_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class _Reading:
    survey: Survey
    leases: dict[str, list[str]]
    node: NodeStats


@dataclass(frozen=True)
class StatusReport:
    """The rows, a row per service host, the service hosts that did not answer
    (name -> reason), and when the reading began: every figure was read after
    ``read_at`` (a server hands one reading to many requests, see
    :mod:`corral.server.fresh`)."""

    rows: list[StatusRow]
    silent: dict[str, str]
    service_hosts: list[ServiceHostRow] = field(default_factory=list)
    read_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_json(self) -> dict[str, object]:
        """``rows`` keep the row contract; ``service_hosts`` are the host rows;
        ``read_at`` and ``age_s`` (seconds since then, now) say how old they are."""
        return {"rows": [r.as_json() for r in self.rows],
                "service_hosts": [h.as_json() for h in self.service_hosts],
                "read_at": self.read_at.isoformat(), "age_s": self.age_s()}

    def age_s(self) -> float:
        """Seconds since ``read_at``, to the millisecond."""
        return round(max((datetime.now(UTC) - self.read_at).total_seconds(), 0.0), 3)


def status(
    session: Session, project: str | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[StatusRow]:
    """One row per host, from one survey per service host, each within ``timeout_s``."""
    return status_report(session, project, timeout_s=timeout_s).rows


def status_report(
    session: Session, project: str | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> StatusReport:
    """:func:`status`, saying also which service hosts did not answer and why."""
    if project is not None:
        check_name("project", project)
    read_at = datetime.now(UTC)
    names = session.service_host_names()

    def read(name: str) -> _Reading:
        backend = session.backend(name)

        def domains() -> tuple[Survey, dict[str, list[str]]]:
            survey = backend.survey(project)
            return survey, backend.leases(survey.lease_networks)

        (survey, leases), node = backend.node_stats_around(domains)
        return _Reading(survey, leases, node)

    rows: list[StatusRow] = []
    seen_hosts: set[tuple[str, str]] = set()
    silent: dict[str, datetime | None] = {}
    reasons: dict[str, str] = {}
    nodes: dict[str, NodeStats] = {}
    # The recorded project files are read while the service hosts answer.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorded") as pool:
        recorded = pool.submit(_recorded_projects, session, project)
        answers = each_within(read, names, timeout_s)
    for service_host, answer in zip(names, answers, strict=True):
        if not isinstance(answer, _Reading):
            silent[service_host] = last_contact(session, service_host)[0]
            reasons[service_host] = describe_failure(answer)
            session.warn(f"service host {service_host} did not answer "
                         f"({reasons[service_host]}); its hosts show as unknown")
            continue
        nodes[service_host] = answer.node
        survey, leases = answer.survey, answer.leases
        for stat in survey.stats:
            model = survey.models.get(stat.domain)
            rows.append(StatusRow(
                project=stat.project,
                host=stat.host,
                state=stat.state.value,
                addresses=_addresses(model, leases),
                service_host=service_host,
                memory_mib=stat.memory_mib,
                vcpus=stat.vcpus,
                uptime_s=stat.uptime_s,
                cpu_percent=stat.cpu_percent,
                disks=_disks(model),
            ))
            seen_hosts.add((stat.project, stat.host))
    remember_contacts(session, list(nodes))
    rows += _recorded_rows(recorded.result(), seen_hosts, silent)
    hosts = [_host_row(name, nodes, reasons, silent, rows) for name in names]
    return StatusReport(sorted(rows, key=lambda r: (r.project, r.host)), reasons, hosts,
                        read_at)


def _host_row(
    name: str,
    nodes: dict[str, NodeStats],
    reasons: dict[str, str],
    silent: dict[str, datetime | None],
    rows: list[StatusRow],
) -> ServiceHostRow:
    count = sum(1 for r in rows if r.service_host == name)
    node = nodes.get(name)
    if node is None:
        last = silent.get(name)
        return ServiceHostRow(name, "unknown", None, None, None, None, None, count,
                              reasons.get(name), last.isoformat() if last else None)
    return ServiceHostRow(name, "up", node.uptime_s, node.cpu_percent, node.cpus,
                          node.memory_mib, node.memory_used_mib, count)


def _disks(model: Host | None) -> list[DiskRow]:
    if model is None:
        return []
    return [DiskRow(d.name, d.size_mib, d.path) for d in model.disks]


def _addresses(model: Host | None, leases: dict[str, list[str]]) -> list[str]:
    if model is None:
        return []
    found: list[str] = []
    for nic in model.interfaces:
        if nic.is_static and nic.address:
            found.append(nic.address)
        found += [ip for ip in leases.get(nic.mac, []) if ip not in found]
    return found


@dataclass(frozen=True)
class _Recorded:
    """A recorded project file as stored: its name and its hosts' JSON, a host
    validated only when no service host has it (most of them are seen)."""

    name: str
    hosts: dict[str, Any]


def _recorded_projects(session: Session, project: str | None) -> list[_Recorded]:
    """The recorded project files (of ``project``); none, with a warning, when the
    state database cannot be read."""
    store = session.store
    if store is None:
        return []
    try:
        records = [store.get_project(project)] if project else store.list_projects()
    except CorralError as error:  # a database fault is only a warning
        session.warn(f"recorded projects not read, absent hosts not shown: {error}")
        return []
    loaded = (json.loads(r.model_json) for r in records if r is not None)
    return [_Recorded(data["name"], data.get("hosts", {})) for data in loaded]


def _recorded_rows(
    recorded: list[_Recorded],
    seen: set[tuple[str, str]],
    silent: dict[str, datetime | None],
) -> list[StatusRow]:
    """Hosts of the recorded project files that no answering service host has:
    ``unknown`` when their service host did not answer, else ``absent``."""
    rows = []
    for model in recorded:
        for name, raw in model.hosts.items():
            if (model.name, name) in seen:
                continue
            host = Host.model_validate(raw)
            where = host.service_host or "-"  # a file recorded before it was placed
            unknown = where in silent
            last = silent.get(where)
            rows.append(StatusRow(
                model.name, host.name, "unknown" if unknown else "absent", [],
                where, host.memory_mib, host.vcpus, None, None, _disks(host),
                last.isoformat() if last else None,
            ))
    return rows

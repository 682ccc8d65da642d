"""Quotas: whether a user's projects, with a new or changed one, fit their limits.

A user's usage is the sum over the projects they own, as last recorded in the
state database, with the project being applied counted as its new model
instead of its recorded one. A host counts with the most it can be given
without a new plan: ``maxmem`` and ``maxvcpus`` when set (``vm mem-set`` and
``vcpu-set`` raise a running guest up to them), else ``memory`` and ``vcpus``.
Projects shared with the user count for their owner, not for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from corral.errors import NotFoundError, QuotaExceeded
from corral.model import Host, Project
from corral.ops.session import Session
from corral.state.accounts import Accounts, Quota


@dataclass(frozen=True, slots=True)
class Footprint:
    """What a set of hosts takes: VMs, memory (MiB) and vCPUs at their ceilings."""

    vms: int = 0
    memory_mib: int = 0
    vcpus: int = 0

    def __add__(self, other: Footprint) -> Footprint:
        return Footprint(self.vms + other.vms, self.memory_mib + other.memory_mib,
                         self.vcpus + other.vcpus)


class _RecordedHost(BaseModel):
    """The fields of a recorded host that quotas read; the rest is ignored, so a
    record written by another version of Corral still counts."""

    model_config = ConfigDict(extra="ignore")
    memory_mib: int = 128
    maxmem_mib: int | None = None
    vcpus: int = 1
    maxvcpus: int | None = None


class _RecordedProject(BaseModel):
    model_config = ConfigDict(extra="ignore")
    hosts: dict[str, _RecordedHost] = {}


def host_footprint(memory_mib: int, maxmem_mib: int | None, vcpus: int,
                   maxvcpus: int | None) -> Footprint:
    return Footprint(1, max(memory_mib, maxmem_mib or 0), max(vcpus, maxvcpus or 0))


def project_footprint(project: Project) -> Footprint:
    return sum((_of_host(h) for h in project.hosts.values()), Footprint())


def recorded_footprint(model_json: str) -> Footprint:
    """The footprint of a recorded model; ValueError when it cannot be read."""
    try:
        recorded = _RecordedProject.model_validate_json(model_json)
    except ValidationError as error:
        raise ValueError(f"recorded model unreadable: {error.error_count()} problem(s)") from None
    return sum((host_footprint(h.memory_mib, h.maxmem_mib, h.vcpus, h.maxvcpus)
                for h in recorded.hosts.values()), Footprint())


def usage(session: Session, user: str, *, leaving_out: str | None = None) -> Footprint:
    """What the projects ``user`` owns take now (as recorded), but ``leaving_out``."""
    store = session.require_store()
    total = Footprint()
    for name in Accounts(store).owned_by(user):
        record = store.get_project(name) if name != leaving_out else None
        if record is None:
            continue
        try:
            total += recorded_footprint(record.model_json)
        except ValueError as error:
            session.warn(f"project {name} left out of user {user}'s quota usage: {error}")
    return total


def charged_user(session: Session, caller: str, project: str) -> str:
    """Whose quota a change of ``project`` counts against: its owner's, whoever makes
    the change (a writer it is shared with grows it within the owner's quota, not
    their own), or the caller's for a project nobody owns (their ``up`` makes
    them its owner)."""
    owner = Accounts(session.require_store()).owner(project)
    return caller if owner is None else owner


def check_quota(session: Session, user: str, project: Project) -> Footprint:
    """The user's usage with ``project`` as given; :class:`QuotaExceeded` naming
    every limit it passes, the figures and by how much."""
    found = Accounts(session.require_store()).user(user)
    if found is None:
        raise NotFoundError(f"user '{user}' does not exist")
    total = usage(session, user, leaving_out=project.name) + project_footprint(project)
    over = _excess(total, found.quota)
    if over:
        raise QuotaExceeded(
            f"project '{project.name}' would bring user '{user}' over their quota: "
            + "; ".join(over),
            hint="make the project smaller, remove another one, or ask an administrator "
                 "for a larger quota (corral user quota)",
        )
    return total


def _excess(total: Footprint, quota: Quota) -> list[str]:
    over = []
    for what, used, limit, unit in (
        ("VMs", total.vms, quota.max_vms, ""),
        ("memory", total.memory_mib, quota.max_memory_mib, " MiB"),
        ("vCPUs", total.vcpus, quota.max_vcpus, ""),
    ):
        if limit is not None and used > limit:
            over.append(f"{what} {used}{unit} of {limit}{unit} allowed, "
                        f"{used - limit}{unit} over")
    return over


def _of_host(host: Host) -> Footprint:
    return host_footprint(host.memory_mib, host.maxmem_mib, host.vcpus, host.maxvcpus)

"""What an Ansible inventory of a project is made of: ``corral inventory``.

Each guest as ``corral ssh`` reaches it (:class:`~corral.ops.reach.SshTarget`:
its address, login user and state), with what Ansible groups it by (the
superclasses it inherits, the switches it is attached to) and a few facts a
play may want (memory, vCPUs). The project is the recorded one (its last
``up``); reading it needs read access, as ``status`` does. The Ansible text
is made from this by :mod:`corral.ops.ansible_inventory`, the same way on
this machine and through a server.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from corral.model import Host
from corral.ops.access import authorize_action
from corral.ops.reach import SshTarget, recorded_model, targets_of
from corral.ops.requests import check_name, check_user
from corral.ops.session import Session


@dataclass(frozen=True)
class InventoryHost:
    """One guest: how to reach it and what it is grouped by."""

    target: SshTarget
    superclasses: tuple[str, ...]
    switches: tuple[str, ...]
    memory_mib: int
    vcpus: int


@dataclass(frozen=True)
class Inventory:
    """A project's guests (by name) and every switch it declares (a switch no guest
    is attached to is an empty group, not a missing one)."""

    project: str
    switches: tuple[str, ...]
    hosts: tuple[InventoryHost, ...]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def inventory(session: Session, project: str, user: str | None = None) -> Inventory:
    """Every host of the recorded ``project``, logged in as ``user`` if given."""
    check_name("project", project)
    if user is not None:
        check_user(user)
    authorize_action(session, session.identity, project, "inventory")
    model = recorded_model(session, project)
    names = sorted(model.hosts)
    targets = targets_of(session, model, names, user)
    return Inventory(project, tuple(sorted(model.switches)), tuple(
        _host(model.hosts[name], target) for name, target in zip(names, targets, strict=True)))


def _host(host: Host, target: SshTarget) -> InventoryHost:
    switches = dict.fromkeys(i.switch for i in host.interfaces if i.switch is not None)
    return InventoryHost(target, host.superclasses, tuple(sorted(switches)),
                         host.memory_mib, host.vcpus)

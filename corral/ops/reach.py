"""Reaching the guests over SSH: ``corral ssh`` and ``corral ssh-config``.

What ``vagrant ssh`` and ``kcli ssh`` users expect: one command to a guest's
shell without looking up its address or its user. The address is the
guest's first IPv4 address as ``status`` reads it (the file's static address
or the DHCP lease); the user is the one the project gave a key to (root
first), else the first user the project makes, else root; the caller may name
another with ``-l``. The project is the recorded one (its last ``up``).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from corral.errors import NotFoundError
from corral.model import Host, Project
from corral.ops.access import authorize_action
from corral.ops.journal import recorded_project
from corral.ops.requests import check_name, check_user
from corral.ops.session import Session
from corral.ops.status import StatusRow, status_report


@dataclass(frozen=True)
class SshTarget:
    """How to reach one guest: ``address`` None when none is known (not running,
    no lease yet), with ``state`` saying why."""

    project: str
    host: str
    address: str | None
    user: str
    state: str
    service_host: str

    @property
    def alias(self) -> str:
        return f"{self.project}.{self.host}"

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def login_user(host: Host) -> str:
    """The user a guest is logged in as by default: root when root has a key, else
    the first user with a key, else the first user the project makes, else root."""
    keyed = [user for user, keys in host.ssh_keys.items() if keys]
    if "root" in keyed:
        return "root"
    if keyed:
        return keyed[0]
    return next(iter(host.users), "root")


def first_ipv4(addresses: list[str]) -> str | None:
    for text in addresses:
        try:
            address = ipaddress.ip_interface(text).ip
        except ValueError:
            continue
        if address.version == 4:
            return str(address)
    return None


def ssh_targets(session: Session, project: str, host: str | None = None,
                user: str | None = None) -> list[SshTarget]:
    """Every host of ``project`` (or ``host``) with its address and login user."""
    check_name("project", project)
    if user is not None:
        check_user(user)
    authorize_action(session, session.identity, project, "ssh")
    model = recorded_model(session, project)
    if host is not None and host not in model.hosts:
        raise NotFoundError(f"project '{project}' has no host '{host}'",
                            hint=f"its hosts: {', '.join(sorted(model.hosts))}")
    return targets_of(session, model, [host] if host is not None else sorted(model.hosts), user)


def targets_of(session: Session, model: Project, names: list[str],
               user: str | None) -> list[SshTarget]:
    """The targets of ``model``'s hosts ``names``, their addresses read by status
    (the caller has authorised the reading)."""
    rows = {r.host: r for r in status_report(session, model.name).rows}
    return [_target(model.name, model.hosts[name], rows.get(name), user) for name in names]


def recorded_model(session: Session, project: str) -> Project:
    """The model the project's last ``up``/``build``/``upgrade`` recorded."""
    record = recorded_project(session, project)
    if record is None:
        raise NotFoundError(f"project '{project}' not found",
                            hint="bring it up first: corral up FILE")
    return Project.model_validate(json.loads(record.model_json))


def _target(project: str, host: Host, row: StatusRow | None, user: str | None) -> SshTarget:
    return SshTarget(project=project, host=host.name,
                     address=first_ipv4(row.addresses) if row else None,
                     user=user or login_user(host),
                     state=row.state if row else "absent",
                     service_host=row.service_host if row else host.placed_on)


def ssh_config(targets: list[SshTarget], identity: Path | None = None) -> str:
    """An OpenSSH configuration block per guest (``Host PROJECT.HOST``); a guest
    without an address is a comment saying why."""
    blocks = []
    for target in targets:
        if target.address is None:
            blocks.append(f"# {target.alias}: no address known ({target.state})\n")
            continue
        lines = [f"Host {target.alias}", f"    HostName {target.address}",
                 f"    User {target.user}",
                 # Guests are rebuilt with new host keys: the key is kept per guest
                 # name, and a new guest's key is accepted the first time only.
                 f"    HostKeyAlias {target.alias}",
                 "    StrictHostKeyChecking accept-new"]
        if identity is not None:
            lines += [f"    IdentityFile {identity}", "    IdentitiesOnly yes"]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def host_key_options(target: SshTarget) -> tuple[str, ...]:
    """OpenSSH options (``-o``) for ``target``'s host key: kept per guest name, as
    guests are rebuilt with new keys; a new guest's accepted the first time only."""
    return (f"HostKeyAlias={target.alias}", "StrictHostKeyChecking=accept-new")


def ssh_command(target: SshTarget, identity: Path | None, command: list[str]) -> list[str]:
    """The ``ssh`` command line that opens ``target`` (and runs ``command``)."""
    if target.address is None:
        raise NotFoundError(f"{target.alias} has no known address ({target.state})",
                            hint="is it running, and has it taken a DHCP lease? "
                                 "corral status shows its addresses")
    argv = ["ssh"]
    for option in host_key_options(target):
        argv += ["-o", option]
    argv += ["-l", target.user]
    if identity is not None:
        argv += ["-i", str(identity), "-o", "IdentitiesOnly=yes"]
    argv.append(target.address)
    if command:
        argv += ["--", *command]
    return argv

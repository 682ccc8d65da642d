"""A project's :class:`~corral.ops.inventory.Inventory` as Ansible reads it.

Hosts are named as in the project file (``web``), with ``ansible_host`` the
address ``corral ssh`` would use, ``ansible_user`` its login user and
``ansible_ssh_common_args`` the host-key handling of ``corral ssh-config``
(keys kept per ``PROJECT.HOST``, a new guest's accepted the first time).

Groups, every name made of letters, digits and underscores (Ansible's rule),
a hyphen or any other character becoming ``_``:

* ``project_P``: every host of project ``P`` (where ``P`` is not the only
  project an inventory is used with, this keeps them apart);
* ``switch_S``: the hosts attached to switch ``S`` (every switch, even one no
  host is attached to);
* one per superclass, named after it (``web-server`` -> ``web_server``), the
  hosts that inherit it, directly or not. A superclass whose name would start
  with a digit, begin like the groups above (``project_``, ``switch_``,
  ``superclass_``) or be ``all``, ``ungrouped`` or ``no_address`` becomes
  ``superclass_NAME``; two that would still share a name are told apart by a
  suffix ``_2``, ``_3`` in name order;
* ``no_address``: the hosts whose address is not known (not running, no DHCP
  lease yet). They stay in every group, without ``ansible_host``, their
  ``corral_state`` saying why, so that the groups are the project's whole
  shape and a play skips them with ``--limit '!no_address'``.

Renderings: YAML (Ansible's YAML inventory), INI, and JSON (what an inventory
script prints for ``--list``, ``_meta.hostvars`` included). All three list
hosts by name and groups in the order above, so the same project gives the
same text.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from corral.ops.inventory import Inventory, InventoryHost
from corral.ops.reach import host_key_options

NO_ADDRESS = "no_address"
_RESERVED_NAMES = frozenset({"all", "ungrouped", NO_ADDRESS})
_RESERVED_PREFIXES = ("project_", "switch_", "superclass_")
_NOT_IN_A_NAME = re.compile(r"[^A-Za-z0-9_]")
_PLAIN_INI_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")

HostVars = dict[str, str | int]


@dataclass(frozen=True)
class AnsibleInventory:
    """Host variables by host (in name order), the hosts of each group (in the
    order groups are written), and a note per host without an address."""

    project: str
    hostvars: dict[str, HostVars]
    groups: dict[str, tuple[str, ...]]
    notes: tuple[str, ...]


def group_name(text: str) -> str:
    """``text`` in the characters Ansible allows in a group name."""
    return _NOT_IN_A_NAME.sub("_", text)


def superclass_groups(superclasses: Iterable[str]) -> dict[str, str]:
    """Each superclass's group name (see the module docstring), distinct from each
    other and from every other group."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for superclass in sorted(set(superclasses)):
        name = group_name(superclass)
        if (name[:1].isdigit() or name in _RESERVED_NAMES
                or name.startswith(_RESERVED_PREFIXES)):
            name = f"superclass_{name}"
        unique, count = name, 1
        while unique in taken:
            count += 1
            unique = f"{name}_{count}"
        taken.add(unique)
        names[superclass] = unique
    return names


def ansible_inventory(inventory: Inventory, identity: Path | None = None) -> AnsibleInventory:
    """The groups and host variables of ``inventory``; ``identity`` is the private
    key Ansible logs in with (else its own choice)."""
    hosts = {h.target.host: h for h in sorted(inventory.hosts, key=lambda h: h.target.host)}
    groups: dict[str, tuple[str, ...]] = {
        f"project_{group_name(inventory.project)}": tuple(hosts)}
    for switch in inventory.switches:
        groups[f"switch_{group_name(switch)}"] = tuple(
            name for name, host in hosts.items() if switch in host.switches)
    named = superclass_groups(s for host in hosts.values() for s in host.superclasses)
    for superclass, group in sorted(named.items(), key=lambda item: item[1]):
        groups[group] = tuple(
            name for name, host in hosts.items() if superclass in host.superclasses)
    unaddressed = tuple(name for name, host in hosts.items() if host.target.address is None)
    if unaddressed:
        groups[NO_ADDRESS] = unaddressed
    notes = tuple(f"{name}: no address known ({hosts[name].target.state})"
                  for name in unaddressed)
    return AnsibleInventory(
        inventory.project, {name: _hostvars(host, identity) for name, host in hosts.items()},
        groups, notes)


def _hostvars(host: InventoryHost, identity: Path | None) -> HostVars:
    target = host.target
    options = [*host_key_options(target), *(["IdentitiesOnly=yes"] if identity else [])]
    found: HostVars = {}
    if target.address is not None:
        found["ansible_host"] = target.address
    found["ansible_user"] = target.user
    found["ansible_ssh_common_args"] = " ".join(f"-o {option}" for option in options)
    if identity is not None:
        found["ansible_ssh_private_key_file"] = str(identity)
    found.update({
        "corral_project": target.project, "corral_state": target.state,
        "corral_service_host": target.service_host,
        "corral_memory_mib": host.memory_mib, "corral_vcpus": host.vcpus})
    return found


def _header(found: AnsibleInventory) -> str:
    lines = [f"Ansible inventory of Corral project {found.project}", *found.notes]
    return "".join(f"# {line}\n" for line in lines)


def as_yaml(found: AnsibleInventory) -> str:
    """Ansible's YAML inventory: ``all: children: GROUP: hosts: ...``, the host
    variables given once, under the project's group."""
    project_group = next(iter(found.groups))
    children: dict[str, object] = {}
    for group, hosts in found.groups.items():
        if group == project_group:
            children[group] = {"hosts": {h: found.hostvars[h] for h in hosts}}
        else:
            children[group] = {"hosts": dict.fromkeys(hosts)} if hosts else {}
    body = yaml.safe_dump({"all": {"children": children}}, sort_keys=False,
                          default_flow_style=False, width=1000)
    return _header(found) + body


def as_ini(found: AnsibleInventory) -> str:
    """Ansible's INI inventory: a ``[GROUP]`` section per group, the host
    variables on the host's line in the project's group."""
    project_group = next(iter(found.groups))
    sections = []
    for group, hosts in found.groups.items():
        lines = [f"[{group}]"]
        for host in hosts:
            if group == project_group:
                values = (f"{key}={_ini_value(value)}"
                          for key, value in found.hostvars[host].items())
                lines.append(" ".join((host, *values)))
            else:
                lines.append(host)
        sections.append("\n".join(lines) + "\n")
    return _header(found) + "\n".join(sections)


def _ini_value(value: str | int) -> str:
    """One ``key=value`` value as Ansible's INI reader gets it back: it splits the
    line as a shell would, then reads each value as a Python literal if it is
    one. A string that would read as another type (``1``) is written as the
    literal of a string."""
    if isinstance(value, int):
        return str(value)
    token = value
    try:
        ast.literal_eval(value)
        token = repr(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    if _PLAIN_INI_WORD.fullmatch(token):
        return token
    if "'" in token and not set('"\\') & set(token):
        return f'"{token}"'  # what the shell would read back, more legibly than shlex's
    return shlex.quote(token)


def as_json(found: AnsibleInventory) -> str:
    """What an inventory script prints for ``--list``: each group's hosts, and
    every host's variables under ``_meta.hostvars``."""
    data: dict[str, object] = {"_meta": {"hostvars": found.hostvars},
                               "all": {"children": list(found.groups)}}
    data.update({group: {"hosts": list(hosts)} for group, hosts in found.groups.items()})
    return json.dumps(data, indent=2) + "\n"


FORMATS: dict[str, Callable[[AnsibleInventory], str]] = {
    "yaml": as_yaml, "ini": as_ini, "json": as_json}

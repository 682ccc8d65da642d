"""The Ansible inventory's groups, host variables and texts, read back by Ansible's
own ``ansible-inventory`` where it is installed (``make setup`` installs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from corral.ops.ansible_inventory import (
    ansible_inventory,
    as_ini,
    as_json,
    as_yaml,
    group_name,
    superclass_groups,
)
from corral.ops.inventory import Inventory, InventoryHost
from corral.ops.reach import SshTarget


def _host(name: str, address: str | None, superclasses: tuple[str, ...],
          switches: tuple[str, ...], state: str = "running",
          service_host: str = "local") -> InventoryHost:
    return InventoryHost(SshTarget("lab", name, address, "ops", state, service_host),
                         superclasses, switches, 256, 2)


LAB = Inventory("lab", ("back", "front", "spare"), (
    _host("web", "10.9.1.30", ("node", "web-server"), ("front",)),
    _host("app", "10.9.1.20", ("node",), ("back", "front"), service_host="1"),
    _host("db", None, ("node", "2tier", "switch-x", "all"), ("back",), state="shut off"),
))

GROUPS = {
    "project_lab": ("app", "db", "web"),
    "switch_back": ("app", "db"),
    "switch_front": ("app", "web"),
    "switch_spare": (),
    "node": ("app", "db", "web"),
    "superclass_2tier": ("db",),
    "superclass_all": ("db",),
    "superclass_switch_x": ("db",),
    "web_server": ("web",),
    "no_address": ("db",),
}


def test_group_names_are_what_ansible_allows_and_never_clash() -> None:
    assert group_name("web-server.v2") == "web_server_v2"
    assert superclass_groups(["web-server", "web.server", "9lives", "project-x", "ungrouped",
                              "no-address", "node"]) == {
        "9lives": "superclass_9lives", "no-address": "superclass_no_address",
        "node": "node", "project-x": "superclass_project_x",
        "ungrouped": "superclass_ungrouped", "web-server": "web_server",
        "web.server": "web_server_2"}


def test_groups_per_project_switch_and_superclass_and_the_hosts_without_an_address() -> None:
    found = ansible_inventory(LAB)
    assert found.groups == GROUPS
    assert list(found.hostvars) == ["app", "db", "web"]
    assert found.notes == ("db: no address known (shut off)",)


def test_host_variables_say_how_to_reach_each_guest() -> None:
    found = ansible_inventory(LAB, Path("/keys/lab key"))
    assert found.hostvars["app"] == {
        "ansible_host": "10.9.1.20", "ansible_user": "ops",
        "ansible_ssh_common_args": "-o HostKeyAlias=lab.app -o StrictHostKeyChecking=accept-new"
                                   " -o IdentitiesOnly=yes",
        "ansible_ssh_private_key_file": "/keys/lab key",
        "corral_project": "lab", "corral_state": "running", "corral_service_host": "1",
        "corral_memory_mib": 256, "corral_vcpus": 2}
    assert "ansible_host" not in found.hostvars["db"]
    plain = ansible_inventory(LAB).hostvars["web"]
    assert plain["ansible_ssh_common_args"] == (
        "-o HostKeyAlias=lab.web -o StrictHostKeyChecking=accept-new")
    assert "ansible_ssh_private_key_file" not in plain


def test_the_ini_text() -> None:
    text = as_ini(ansible_inventory(LAB, Path("/keys/lab key")))
    assert text.startswith("# Ansible inventory of Corral project lab\n"
                           "# db: no address known (shut off)\n[project_lab]\n")
    app_line = next(line for line in text.splitlines() if line.startswith("app "))
    assert "ansible_host=10.9.1.20 " in app_line
    assert "ansible_ssh_private_key_file='/keys/lab key'" in app_line
    assert "corral_service_host=\"'1'\" " in app_line  # the string '1', not the number
    assert "\n[switch_spare]\n\n[node]\napp\ndb\nweb\n" in text
    assert "corral_state='shut off'" in text


def test_the_texts_are_the_same_for_the_same_project() -> None:
    shuffled = Inventory(LAB.project, LAB.switches, tuple(reversed(LAB.hosts)))
    for render in (as_yaml, as_ini, as_json):
        assert render(ansible_inventory(shuffled)) == render(ansible_inventory(LAB))


def _ansible_list(source: Path, tmp_path: Path) -> dict:
    """``ansible-inventory --list`` of ``source``: what Ansible makes of it."""
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "ansible"),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"), "ANSIBLE_NOCOLOR": "1"}
    ran = subprocess.run(["ansible-inventory", "-i", str(source), "--list"],
                         capture_output=True, text=True, env=env, check=False)
    assert ran.returncode == 0, ran.stderr
    assert "WARNING" not in ran.stderr, ran.stderr
    listed: dict = json.loads(ran.stdout)
    return listed


def _shape(listed: dict) -> tuple[dict, dict]:
    """Groups (with their hosts, as sets) and host variables of a ``--list`` answer."""
    groups = {name: set(group.get("hosts", ())) for name, group in listed.items()
              if name not in ("_meta", "all", "ungrouped")}
    return groups, listed["_meta"]["hostvars"]


@pytest.mark.skipif(shutil.which("ansible-inventory") is None,
                    reason="ansible-inventory is not installed (Debian: ansible-core)")
@pytest.mark.parametrize("key", ["/keys/lab key", "/keys/lab's key #1", '/keys/"lab" \\ key'])
def test_ansible_reads_each_format_as_the_inventory_meant(tmp_path: Path, key: str) -> None:
    found = ansible_inventory(LAB, Path(key))
    (tmp_path / "lab.yml").write_text(as_yaml(found))
    (tmp_path / "lab.ini").write_text(as_ini(found))
    (tmp_path / "lab.json").write_text(as_json(found))
    script = tmp_path / "lab-inventory"
    script.write_text(f"#!/bin/sh\nexec cat '{tmp_path / 'lab.json'}'\n")
    script.chmod(0o755)
    expected = ({g: set(h) for g, h in GROUPS.items() if h}, found.hostvars)
    for source in ("lab.yml", "lab.ini", "lab-inventory"):
        groups, hostvars = _shape(_ansible_list(tmp_path / source, tmp_path))
        assert {g: h for g, h in groups.items() if h} == expected[0], source
        assert hostvars == expected[1], source
        assert hostvars["app"]["corral_service_host"] == "1"  # a string, in every format
        assert hostvars["web"]["ansible_host"] == "10.9.1.30"
        assert hostvars["web"]["ansible_ssh_private_key_file"] == key

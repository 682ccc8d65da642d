"""``corral inventory``'s data on the test driver: the recorded project's guests,
reached as ``corral ssh`` reaches them, with their superclasses and switches."""

from __future__ import annotations

import pytest

from corral.errors import NotFoundError
from corral.ops import projects
from corral.ops.inventory import inventory
from corral.ops.reach import ssh_targets

DB = """
superclass 2tier { superclass node
    vcpus 2 }
host db {
    superclass 2tier
    network eth0 { switch back }
}
"""


def test_every_guest_with_its_address_superclasses_and_switches(session, lab_file) -> None:
    projects.up(session, lab_file(extra=DB), wait=False)
    found = inventory(session, "lab")
    assert found.project == "lab"
    assert found.switches == ("back", "front")
    hosts = {h.target.host: h for h in found.hosts}
    assert list(hosts) == ["app", "db", "web"]
    assert [(h.superclasses, h.switches) for h in hosts.values()] == [
        (("node",), ("back", "front")), (("node", "2tier"), ("back",)), (("node",), ("front",))]
    assert [(h.memory_mib, h.vcpus) for h in hosts.values()] == [(128, 1), (128, 2), (128, 1)]
    # the very targets corral ssh uses: app's static address, none for web (no lease here)
    assert [h.target for h in found.hosts] == ssh_targets(session, "lab")
    assert (hosts["app"].target.address, hosts["web"].target.address) == ("10.9.1.20", None)
    assert {h.target.state for h in found.hosts} == {"running"}


def test_the_login_user_may_be_chosen(session, lab_file) -> None:
    projects.up(session, lab_file(), wait=False)
    assert {h.target.user for h in inventory(session, "lab").hosts} == {"root"}
    assert {h.target.user for h in inventory(session, "lab", "ops").hosts} == {"ops"}


def test_a_project_never_brought_up_is_not_found(session) -> None:
    with pytest.raises(NotFoundError, match="project 'lab' not found"):
        inventory(session, "lab")

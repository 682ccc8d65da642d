"""Capabilities asked of each service host, and the planner's live-or-next-boot decision."""

from __future__ import annotations

import libvirt
import pytest

from corral.backends.base import Capabilities
from corral.backends.libvirt import hostinfo
from corral.backends.libvirt.backend import LibvirtBackend
from corral.model import Host, Interface, Project, Switch
from corral.ops import projects
from corral.ops.results import Applied
from corral.plan import ObservedHost, ObservedProject, plan_project

QEMU_DOMCAPS = """<domainCapabilities><domain>qemu</domain><vcpu max='255'/>
<devices><disk supported='yes'><enum name='bus'><value>ide</value><value>virtio</value>
</enum></disk></devices></domainCapabilities>"""
IDE_ONLY = QEMU_DOMCAPS.replace("<value>virtio</value>", "")
HOST_CAPS = """<capabilities><host><migration_features><live/></migration_features></host>
<guest><os_type>hvm</os_type><arch name='x86_64'><domain type='qemu'/></arch></guest>
</capabilities>"""


def test_the_test_driver_answers_for_itself() -> None:
    backend = LibvirtBackend("local", "test:///default")
    try:
        caps = backend.capabilities()
        conn = libvirt.open("test:///default")
        expected_max = conn.getMaxVcpus(None)
        conn.close()
    finally:
        backend.close()
    assert caps.driver == "TEST"
    assert (caps.live_memory, caps.live_vcpus) == (True, True)
    assert (caps.live_nics, caps.live_disks, caps.migration) == (False, False, False)
    assert caps.max_vcpus == expected_max
    assert caps.as_json()["virt_types"] == ["qemu"]


def test_domain_and_host_capabilities_are_read() -> None:
    assert hostinfo._vcpu_max(QEMU_DOMCAPS) == 255
    assert hostinfo._disk_buses(QEMU_DOMCAPS) == {"ide", "virtio"}
    assert not hostinfo._disk_buses(IDE_ONLY) & hostinfo.HOTPLUG_DISK_BUSES
    assert hostinfo.live_migration(HOST_CAPS)
    assert not hostinfo.live_migration(HOST_CAPS.replace("<live/>", ""))


@pytest.mark.libvirt
def test_qemu_answers_for_itself() -> None:
    backend = LibvirtBackend("local", "qemu:///system")
    try:
        caps = backend.capabilities()
    finally:
        backend.close()
    assert caps.driver == "QEMU" and caps.live_nics and caps.live_disks
    assert caps.max_vcpus and caps.max_vcpus > 1 and caps.migration


NIC = Interface(name="eth0", switch="lan", address="dhcp", mac="52:54:00:00:00:01")
NIC2 = Interface(name="eth1", switch="lan", address="dhcp", mac="52:54:00:00:00:02")


def _plan(before: Host, after: Host, caps: Capabilities | None):
    def project(host: Host) -> Project:
        return Project(name="lab", hosts={"web": host}, switches={"lan": Switch(name="lan")})

    seen = ObservedProject("lab", {"web": ObservedHost(
        "web", before.model_hash(), "running", "local", "lab-web", before
    )}, {})
    plan = plan_project(project(after), seen, {"local": caps} if caps else None)
    (action,) = [a for a in plan.actions if a.target == "web"]
    return {c.field: c.live for c in action.changes}


BASE = dict(name="web", template="tiny", memory_mib=128, maxmem_mib=512, vcpus=1, maxvcpus=8,
            interfaces=(NIC,), service_host="local")
EVERYTHING = Capabilities(live_memory=True, live_vcpus=True, live_nics=True, live_disks=True,
                          max_vcpus=64)


def test_what_the_host_can_do_live_stays_live() -> None:
    after = Host(**{**BASE, "memory_mib": 256, "vcpus": 4, "interfaces": (NIC, NIC2)})
    assert _plan(Host(**BASE), after, EVERYTHING) == {
        "memory_mib": True, "vcpus": True, "interface eth1": True,
    }
    assert _plan(Host(**BASE), after, None) == _plan(Host(**BASE), after, EVERYTHING)


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        ({"live_memory": False}, {"memory_mib": False, "vcpus": True, "interface eth1": True}),
        ({"live_vcpus": False}, {"memory_mib": True, "vcpus": False, "interface eth1": True}),
        ({"max_vcpus": 2}, {"memory_mib": True, "vcpus": False, "interface eth1": True}),
        ({"live_nics": False}, {"memory_mib": True, "vcpus": True, "interface eth1": False}),
    ],
)
def test_what_the_host_cannot_do_live_waits_for_the_next_boot(caps, expected) -> None:
    after = Host(**{**BASE, "memory_mib": 256, "vcpus": 4, "interfaces": (NIC, NIC2)})
    limited = Capabilities(**{**EVERYTHING.as_json(), **caps,
                              "virt_types": frozenset()})  # type: ignore[arg-type]
    assert _plan(Host(**BASE), after, limited) == expected


def test_a_nic_added_on_the_test_driver_takes_effect_at_next_boot(session, lab_file):
    path = lab_file()
    projects.up(session, path, wait=False)
    web_nic = "    network eth0 {\n        switch front\n        address dhcp\n    }\n"
    text = path.read_text().replace(web_nic, web_nic + "    network eth1 { switch back }\n", 1)
    assert text != path.read_text()
    path.write_text(text)
    result = projects.upgrade(session, path)
    (web,) = [a for a in result.actions if a.target == "web"]
    assert [(c.field, c.applied) for c in web.changes] == [("interface eth1", Applied.NEXT_BOOT)]
    assert projects.plan_source(session, path).empty


def test_a_disk_added_on_the_test_driver_takes_effect_at_next_boot(session, lab_file):
    path = lab_file()
    projects.up(session, path, wait=False)
    web_nic = "    network eth0 {\n        switch front\n        address dhcp\n    }\n"
    path.write_text(path.read_text().replace(web_nic, web_nic + "    disk data { size 1G }\n", 1))
    result = projects.upgrade(session, path)  # the test driver cannot hotplug: no attach call
    (web,) = [a for a in result.actions if a.target == "web"]
    assert [(c.field, c.applied) for c in web.changes] == [("disk data", Applied.NEXT_BOOT)]
    domain = session.backend("local").conn.lookupByName("lab-web")
    assert "<serial>data</serial>" not in domain.XMLDesc(0)  # not plugged into the running guest
    assert "<serial>data</serial>" in domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert projects.plan_source(session, path).empty

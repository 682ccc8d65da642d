"""``lxc`` hosts in the language, the planner and the scheduler: what a container
cannot have is refused at the key, a container's changes are live only where
its driver can make them, and only a service host that runs containers takes one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from corral.backends.base import Capabilities
from corral.model import Host, Project, Virt
from corral.plan import ActionKind, ObservedHost, ObservedProject, plan_project
from corral.plan.placement import Need, PlacementError, Request, ServiceHostState, place


def test_what_a_container_cannot_have_is_refused_at_the_key(errors) -> None:
    found = errors(
        "global { project p }\nswitch lan { }\n"
        "superclass big {\n    size 4G\n}\n"
        "host c1 {\n    superclass big\n    lxc\n    hvm\n    vncdisplay 3\n"
        "    disk data { size 1G }\n"
        "    network eth0 { switch lan }\n    network eth1 { }\n}\n"
    )
    assert found == [
        "4:5: host c1: 'size' does not apply to an lxc host: a container's root is a "
        "directory, which has no size",
        "9:5: host c1: 'hvm' does not apply to an lxc host: a container boots no firmware",
        "10:5: host c1: 'vncdisplay' does not apply to an lxc host: a container has no display",
        "11:5: host c1: 'disk' does not apply to an lxc host: a container has no disks "
        "(its root is a directory)",
        "13:5: host c1: interface eth1 of an lxc host needs a switch or a bridge "
        "(user-mode networking is QEMU's)",
    ]


def test_a_container_with_a_switch_and_a_bridge_loads(load) -> None:
    project = load(
        "global { project p }\nswitch lan { address 10.1.0.1/24 }\n"
        "host c1 {\n    lxc\n    memory 256M\n    vcpus 2\n"
        "    network eth0 { switch lan\n address 10.1.0.5 }\n"
        "    network eth1 { bridge br0\n address dhcp }\n}\n"
    )
    host = project.hosts["c1"]
    assert host.virt is Virt.LXC and host.memory_mib == 256
    assert [(i.switch, i.bridge) for i in host.interfaces] == [("lan", None), (None, "br0")]


VM_CAPS = Capabilities(live_memory=True, live_vcpus=True, live_nics=True, max_vcpus=8,
                       driver="QEMU")
LXC_CAPS = Capabilities(live_memory=True, live_vcpus=False, live_nics=True, driver="LXC")


def _project(host: Host) -> Project:
    return Project(name="lab", hosts={host.name: host}, switches={})


def _running(project: Project) -> ObservedProject:
    hosts = {n: ObservedHost(n, h.model_hash(), "running", "local", f"lab-{n}", h)
             for n, h in project.hosts.items()}
    return ObservedProject("lab", hosts, {})


@pytest.mark.parametrize(("virt", "vcpus_live"), [(Virt.KVM, True), (Virt.LXC, False)])
def test_a_container_takes_its_drivers_capabilities(virt: Virt, vcpus_live: bool) -> None:
    before = Host(name="c1", template="t", virt=virt, vcpus=1, maxvcpus=4, maxmem_mib=1024,
                  service_host="local")
    after = before.model_copy(update={"vcpus": 2, "memory_mib": 256})
    caps = {"local": replace(VM_CAPS, containers=LXC_CAPS)}
    (action,) = plan_project(_project(after), _running(_project(before)), caps).actions
    assert action.kind is ActionKind.UPDATE_HOST
    live = {c.field: c.live for c in action.changes}
    assert live == {"memory_mib": True, "vcpus": vcpus_live}


def test_only_a_service_host_that_runs_containers_takes_an_lxc_host() -> None:
    machines = [ServiceHostState("h1", cpus=8, memory_mib=8192),
                ServiceHostState("h2", cpus=8, memory_mib=8192, containers=True)]
    chosen = place(Request([Need("c1", 256, 1, container=True), Need("v1", 256, 1)], {},
                           machines))
    assert chosen["c1"] == "h2"
    with pytest.raises(PlacementError, match="h1 runs no containers"):
        place(Request([Need("c1", 256, 1, container=True)], {}, machines[:1]))

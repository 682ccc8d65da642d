"""lcfg-xen resources into a Corral project: the examples printed in the lcfg-xen
talk, verbatim, convert into projects ``corral validate`` accepts, and ``show --json``
gives the hosts, MACs, addresses, memory, vCPUs and pinning they say; variants
(comments, odd spacing, missing keys, contradictions) warn at their source line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from corral.config import SiteConfig
from corral.convert import lcfg
from corral.model import Project
from corral.ops.convert import convert_file
from corral.ops.projects import load_source
from corral.ops.source import ProjectSource

# The examples printed in the lcfg-xen talk: a single VM, a virtual cluster (with
# the talk's own elisions), its group configuration, and host bridges.
SINGLE = """!xen.virtualmachines      mADD(profiledev)
!xen.name_profiledev     mSET(profiledev)
!xen.uuid_profiledev     mSET(bbdda922-8ee3-4ff8-874e-7c4e712dc4c7)
!xen.type_profiledev     mSET(hvm)
!xen.maxmem_profiledev   mSET(512)
!xen.memory_profiledev   mSET(256)
!xen.vcpus_profiledev    mSET(1)
!xen.disks_profiledev    mADD(root)
!xen.diskname_profiledev mSET(profiledev)
!xen.disktype_profiledev mSET(image)
!xen.disksize_profiledev mSET(12)
!xen.diskpath_profiledev mSET(/guests)
!xen.vifs_profiledev     mADD(vif1)
!xen.mac_profiledev_vif1 mSET(00:15:17:96:40:03)
!xen.template_profiledev mSET(/guests/lcfg_temp.img)
!xen.profileurl_profiledev mSET(http://lcfg.ucs.ed.ac.uk/profiles/epcc.ed.ac.uk/)
!xen.partition_profiledev mSET(5)
"""
CLUSTER = """!xen.xendconfbridgenet      mSET (off)
!xen.xendconfnatnet        mSET (on)

!xen.virtualmachines        mADD (node1 ... node8)

!xen.name_node1            mSET (node1)
!xen.type_node1            mSET (paravm)
!xen.uuid_node1            mSET (26d1876a-85fc-49a4-9a5b-929570e18bb65)
!xen.maxmem_node1          mSET (1930)
!xen.memory_node1          mSET (1930)
!xen.cpus_node1            mCONCATQ ("0,1,2,3")
!xen.vcpus_node1           mSET (4)
!xen.disks_node1           mADD (root)
!xen.diskname_node1_root   mSET (node1)
!xen.disktype_node1_root   mSET (image)
!xen.disksize_node1_root   mSET (20)
!xen.diskpath_node1_root   mSET (/data/guests)
!xen.vifs_node1            mADD (vif1)
!xen.nettype_node1_vif1    mSET (nat)
!xen.mac_node1_vif1        mSET (00:16:2a:24:a3:7c)
!xen.ip_node1_vif1         mSET (10.0.0.1)
!xen.boot_node1            mSET (no)
(...)
!xen.name_node8            mSET (node8)
(...)
!xen.ip_node8_vif1         mSET (10.0.0.8)
"""
GROUPS = """!xen.virtualgroup          mADD(cluster1)
!xen.members_cluster1     mADD(node1 node2 node3)
!xen.groupmemory_cluster1 mSET(1024)
!xen.groupmaxmem_cluster1 mSET(2048)
!xen.groupcpus_cluster1   mSET(3)
!xen.groupvcpus_cluster1  mSET(4)
!xen.groupbridge_cluster1 mSET(xenbr0)

 
!xen.virtualgroup          mADD(cluster2)
!xen.members_cluster2     mADD(node4 node5)
!xen.groupvcpus_cluster2  mSET(2)
!xen.groupcpus_cluster2   mSET(2)
!xen.groupbridge_cluster2 mSET(xenbr1)

!xen.virtualgroup          mADD(cluster3)
!xen.members_cluster3     mADD(node6 node7 node8)
!xen.groupcpus_cluster3   mADD(2)
!xen.groupnettype_cluster3 mSET(nat)
!xen.groupscript_cluster3 mSET(vif-nat)
"""  # noqa: W293 (the blank line with a space is the talk's own)
BRIDGES = """!xen.xendconfbridgenet          mSET (on)
!xen.xendconfnatnet             mSET (on)

!xen.xendconfcustombridge       mSET (my-network-bridge)
!xen.bridgeinterfaces           mADD (eth0 eth1 eth2)
!xen.bridgenetdev_eth0         mSET (eth0)
!xen.bridgeif_eth0             mSET (xenbr0)
!xen.bridgevifnum_eth0         mSET (0)

!xen.bridgenetdev_eth1         mSET (eth1)
!xen.bridgeif_eth1             mSET (xenbr1)
!xen.bridgevifnum_eth1         mSET (1)

!xen.bridgenetdev_eth2         mSET (eth2)
!xen.bridgeif_eth2             mSET (xenbr2)
!xen.bridgevifnum_eth2         mSET (2)
"""


def source(tmp_path: Path, text: str, name: str = "profile.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def loaded(tmp_path: Path, text: str,
           name: str = "profile.txt") -> tuple[Project, list[tuple[int, str]]]:
    result = convert_file(source(tmp_path, text, name))
    assert result.format == "lcfg" and result.site_config is None
    project = load_source(ProjectSource(result.project, "p.corral", tmp_path), SiteConfig())
    return project, [(w.line, w.message) for w in result.warnings]


def test_single_vm(tmp_path: Path) -> None:
    project, found = loaded(tmp_path, SINGLE)
    host = project.hosts["profiledev"]
    assert host.uuid == "bbdda922-8ee3-4ff8-874e-7c4e712dc4c7"
    assert (host.memory_mib, host.maxmem_mib, host.vcpus, host.hvm) == (256, 512, 1, True)
    assert (host.template, host.size_mib, host.filepath) == ("lcfg_temp", 12 * 1024, "/guests")
    [nic] = host.interfaces
    assert (nic.name, nic.bridge, nic.mac, nic.address) == (
        "vif1", "xenbr0", "00:15:17:96:40:03", "dhcp")
    assert [line for line, _ in found] == [9, 16, 17]
    assert "profileurl" in found[1][1] and "partition" in found[2][1]


def test_cluster_and_groups_through_show_json(tmp_path: Path) -> None:
    path = source(tmp_path, CLUSTER + GROUPS, "cluster.txt")
    out = tmp_path / "cluster.corral"
    done = subprocess.run([sys.executable, "-m", "corral", "convert", str(path), "-o",
                           str(out)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"{path}:8: warning: uuid '26d1876a-85fc-49a4-9a5b-929570e18bb65'" in done.stderr
    assert f"{path}:23: warning: elided text (...)" in done.stderr
    assert f"{path}:33: warning: node1 vif1: its own nettype nat wins" in done.stderr
    assert f"{path}:46: warning: groupscript_cluster3" in done.stderr
    shown = subprocess.run([sys.executable, "-m", "corral", "show", "--json", str(out)],
                           capture_output=True, text=True, check=False)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    hosts = data["hosts"]
    assert sorted(hosts) == [f"node{n}" for n in range(1, 9)]
    node1 = hosts["node1"]
    assert (node1["memory_mib"], node1["maxmem_mib"], node1["vcpus"], node1["cpus"]) == (
        1930, 1930, 4, "0,1,2,3")
    assert (node1["size_mib"], node1["filepath"], node1["autostart"]) == (
        20 * 1024, "/data/guests", False)
    assert node1["interfaces"] == [{"name": "vif1", "switch": "nat", "address": "10.0.0.1",
                                    "netmask": "255.255.255.0", "gateway": None,
                                    "mac": "00:16:2a:24:a3:7c"}]
    assert data["switches"]["nat"]["mode"] == "nat"
    assert data["switches"]["nat"]["address"] == "10.0.0.254/24"
    assert data["groups"] == {"cluster1": ["node1", "node2", "node3"],
                              "cluster2": ["node4", "node5"],
                              "cluster3": ["node6", "node7", "node8"]}
    node2 = hosts["node2"]
    assert (node2["memory_mib"], node2["maxmem_mib"], node2["vcpus"], node2["cpus"]) == (
        1024, 2048, 4, "3")
    assert node2["interfaces"][0]["name"] == "vif1"
    assert (hosts["node4"]["vcpus"], hosts["node4"]["cpus"]) == (2, "2")
    node8 = hosts["node8"]["interfaces"][0]
    assert (node8["switch"], node8["address"]) == ("nat", "10.0.0.8")


def test_cluster_alone_warns_the_vif_it_does_not_list(tmp_path: Path) -> None:
    project, found = loaded(tmp_path, CLUSTER)
    assert sorted(project.hosts) == [f"node{n}" for n in range(1, 9)]
    assert (26, "ip_node8_vif1 (10.0.0.8): not carried over: vif1 is in neither vifs_node8 "
            "nor disks_node8") in found
    assert (1, "xendconfbridgenet (off): not carried over: a setting of the Xen daemon, "
            "the service host's business") in found


def test_groups_alone_name_members_that_are_not_vms(tmp_path: Path) -> None:
    project, found = loaded(tmp_path, GROUPS)
    assert project.hosts == {}
    assert (2, "member node1 of group cluster1 is not a virtual machine of the file: "
            "left out") in found
    assert (1, "group cluster1 has no members among the virtual machines: not carried "
            "over") in found


def test_bridges_wire_vifs_by_number(tmp_path: Path) -> None:
    vm = ("!xen.virtualmachines mADD(a)\n!xen.vifs_a mADD(vif1 vif2)\n"
          "!xen.ip_a_vif2 mSET(192.0.2.7)\n!xen.netmask_a_vif2 mSET(255.255.255.0)\n"
          "!xen.gateway_a_vif2 mSET(192.0.2.1)\n")
    project, found = loaded(tmp_path, BRIDGES + vm)
    nics = project.hosts["a"].interfaces
    assert [(n.name, n.bridge) for n in nics] == [("vif1", "xenbr1"), ("vif2", "xenbr2")]
    assert (nics[1].address, nics[1].netmask, nics[1].gateway) == (
        "192.0.2.7", "255.255.255.0", "192.0.2.1")
    assert (7, "bridge xenbr0 (on eth0) is not created by Corral: it must exist on the "
            "service host") in found


VARIANT = """# a profile with comments
/* and C comments */

!xen.virtualmachines mADD(web)
!xen.virtualmachines   mADD  ( db  )
!xen.memory_web mSET(512)
!xen.maxmem_web mSET(256)
!xen.vcpus_web mSET(two)
!xen.memory_db mSET(128)
!xen.memory_db mSET(256)
!xen.cpus_db mCONCATQ("0,")
!xen.cpus_db mCONCATQ("2")
!xen.vifs_web mADD(vif0)
!xen.mac_web_vif0 mSET(00:16:3e:00:00:01)
!xen.vifs_db mADD(vif0)
!xen.mac_db_vif0 mSET(00:16:3E:00:00:01)
!xen.nettype_db_vif0 mSET(route)
!xen.ip_db_vif0 mSET(172.16.5.9)
!xen.disks_db mADD(root data)
!xen.disksize_db_root mSET(8)
!xen.disksize_db_data mSET(4)
!xen.disktype_db_data mSET(phy)
!xen.boot_db mSET(maybe)
!xen.colour_db mSET(blue)
!xen.name_web mSET(db)
!network.interfaces mADD(eth0)
this line is nonsense
!xen.virtualgroup mADD(g1 g2)
!xen.members_g1 mADD(web)
!xen.members_g2 mADD(web)
!xen.groupvcpus_g1 mSET(2)
!xen.groupvcpus_g2 mSET(3)
"""


def test_variant_warns_each_contradiction(tmp_path: Path) -> None:
    project, found = loaded(tmp_path, VARIANT)
    hosts = project.hosts
    assert sorted(hosts) == ["db"]  # web is named db too: the second db is left out
    lines = {line for line, _ in found}
    assert {5, 26, 27} <= lines
    assert (5, "VM db is named db like VM web: it is not carried over") in found
    assert (26, "resource of component network is not carried over") in found
    assert (27, "not an LCFG resource line: not carried over") in found
    web = hosts["db"]
    assert (web.memory_mib, web.maxmem_mib) == (512, 512)
    assert (7, "db's maxmem 256M is below its memory 512M: maxmem is raised to 512M") in found
    assert (8, "vcpus 'two' is not understood: not carried over") in found
    assert (32, "groups g1 and g2 give db different vcpus: g1's 2 is written on the host") \
        in found
    assert web.vcpus == 2


def test_variant_second_vm(tmp_path: Path) -> None:
    text = VARIANT.replace("!xen.name_web mSET(db)\n", "")
    project, found = loaded(tmp_path, text)
    db = project.hosts["db"]
    assert (db.memory_mib, db.cpus, db.size_mib) == (256, "0,2", 8 * 1024)
    assert [(d.name, d.size_mib) for d in db.disks] == [("data", 4 * 1024)]
    [nic] = db.interfaces
    assert (nic.switch, nic.address) == ("route", "172.16.5.9")
    assert nic.mac is not None and nic.mac != "00:16:3e:00:00:01"  # web's: derived instead
    assert project.switches["route"].address == "172.16.5.254/24"
    assert (10, "memory_db is set again (it was '128' at line 9): the later value wins") \
        in found
    assert any(line == 16 and "mac 00:16:3e:00:00:01 of db is also web's" in m
               for line, m in found)
    assert (22, "disk type 'phy' of db is not carried over: Corral makes an image file") \
        in found
    assert (23, "boot 'maybe' is neither yes nor no: not carried over") in found
    assert any(line == 24 and m.startswith("colour_db (blue): not carried over")
               for line, m in found)


def test_detected_and_looks_like(tmp_path: Path) -> None:
    assert lcfg.looks_like(SINGLE) and lcfg.looks_like(BRIDGES)
    assert not lcfg.looks_like("<VHMS/>")
    assert convert_file(source(tmp_path, CLUSTER)).format == "lcfg"


def test_names_corral_refuses_are_changed_or_left_out_with_a_warning(tmp_path: Path) -> None:
    text = ("!xen.virtualmachines mADD(a)\n!xen.vifs_a mADD(0 vif1 vif1)\n"
            "!xen.bridge_a_vif1 mSET(not a bridge)\n!xen.disks_a mADD(root extra extra)\n"
            "!xen.disksize_a_extra mSET(2)\n!xen.diskpath_a_root mSET(/x/../y)\n"
            "!xen.virtualgroup mADD(g)\n!xen.virtualgroup mADD(g)\n!xen.members_g mADD(a)\n")
    project, found = loaded(tmp_path, text)
    host = project.hosts["a"]
    assert [(n.name, n.bridge) for n in host.interfaces] == [("vif0", "xenbr0"),
                                                             ("vif1", "xenbr0")]
    assert [d.name for d in host.disks] == ["extra"] and host.filepath is None
    assert (2, "vif 0 of a becomes interface vif0") in found
    assert (2, "vif vif1 of a is listed again (as vif1): not carried over") in found
    assert any(line == 3 and "'not a bridge' is not a bridge name" in m for line, m in found)
    assert (4, "disk extra of a is listed again (as extra): not carried over") in found
    assert any(line == 6 and "must not contain '..'" in m for line, m in found)
    assert (8, "group g is listed again (as g): this one is not carried over") in found
    assert project.groups == {"g": ("a",)}

"""vmgen INI files into a Corral project: the example of docs/convert.md converts
into a project ``corral validate`` accepts, and the loaded model and ``show --json``
give the hosts, memory, vCPUs, addresses, MACs, packages, users and lxc flag it
says; the same file rewritten by ConfigParser (as vmgCtl rewrites it) gives the
same project; variants warn at their source line, malformed files are one
positioned error."""

from __future__ import annotations

import configparser
import io
import json
from pathlib import Path

import convert_helpers
import pytest
from convert_helpers import corral

from corral.config import SiteConfig
from corral.convert import vmgen
from corral.errors import SourceErrors
from corral.model import Project
from corral.ops.convert import convert_file
from corral.ops.projects import load_source
from corral.ops.source import ProjectSource

# The example of docs/convert.md: three machines on one NAT network, one of them
# also bridged to the outside.
LAB = """\
; A vmgen lab: a web server, a developer's workstation and a router
; container on one NAT network, the router bridged to the outside too.

[DEFAULT]
netmask = 255.255.255.0

[network]
nameservers = 10.0.0.1, 9.9.9.9

[applications]
installer = apt
install = sshd

[machine web]
type = kvm
os = debian
release = 12
arch = x86_64
description = The lab's web server

[web hardware]
cpus = 2
memory = 1024
memory_limit = 2G
disk_size = 20

[web disk sdb]
size = 10
type = scsi
format = raw

[web network eth0]
switch = lab
mode = nat
address = 10.0.0.10
gateway = 10.0.0.1
mac = 52:54:00:00:00:10

[web users]
root = r00t-secret
alice = wonderland

[web applications]
services = httpd, git

[machine dev]
type = virtualbox
os = ubuntu
release = 22.04

[dev hardware]
cpus = 4
memory = 4G

[dev network eth0]
switch = lab
address = 10.0.0.20
mac = 52:54:00:00:00:20

[dev user bob]
password = builder
groups = sudo

[dev applications]
development = emacs, vim, valgrind, eclipse
gui = browser, mail client

[machine router]
type = lxc
os = debian
release = bookworm

[router hardware]
memory = 256

[router network eth0]
switch = lab
address = 10.0.0.2

[router network eth1]
mode = bridge
bridge = br0
address = 192.168.1.50/24
gateway = 192.168.1.1
"""

LAB_WARNINGS = [
    (29, "[web disk sdb] type = scsi: Corral attaches disks as virtio disks; the SCSI bus "
         "cannot be said: not carried over"),
    (47, "dev: a virtualbox VM runs under KVM/QEMU in Corral"),
    (48, "ubuntu 22.04: `corral template build` makes Debian bookworm and trixie only: "
         "register template ubuntu-22.04 with `corral template add`"),
    (62, "[dev user bob] groups = sudo: a user's groups cannot be said in Corral: not "
         "carried over"),
    (65, "application eclipse: Eclipse is not packaged in Debian (install it from "
         "eclipse.org): not carried over"),
]


def test_the_example_is_the_one_docs_convert_md_prints() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "convert.md").read_text()
    section = docs[docs.index("## vmgen (INI)"):]
    assert section.split("```ini\n", 1)[1].split("```", 1)[0] == LAB


def source(tmp_path: Path, text: str, name: str = "lab.ini") -> Path:
    return convert_helpers.source(tmp_path, text, name)


def loaded(tmp_path: Path, text: str, name: str = "lab.ini",
           fmt: str | None = None) -> tuple[Project, list[tuple[int, str]]]:
    result = convert_file(source(tmp_path, text, name), fmt)
    assert result.format == "vmgen" and result.site_config is None
    project = load_source(ProjectSource(result.project, "p.corral", tmp_path), SiteConfig())
    return project, [(w.line, w.message) for w in result.warnings]


def without_comments(project: str) -> list[str]:
    return [line for line in project.splitlines() if not line.lstrip().startswith("#")]


def test_the_example_converts_into_the_hosts_it_says(tmp_path: Path) -> None:
    project, found = loaded(tmp_path, LAB)
    assert project.name == "lab"
    assert list(project.hosts) == ["web", "dev", "router"]
    web, dev, router = (project.hosts[n] for n in ("web", "dev", "router"))
    assert (web.virt, web.template, web.memory_mib, web.maxmem_mib, web.vcpus, web.size_mib) \
        == ("kvm", "debian-12", 1024, 2048, 2, 20 * 1024)
    assert [(d.name, d.size_mib, d.type) for d in web.disks] == [("sdb", 10 * 1024, "raw")]
    assert web.nameservers == ("10.0.0.1", "9.9.9.9")
    assert (web.root_passwd, web.users) == ("r00t-secret", {"alice": "wonderland"})
    assert web.packages == ("openssh-server", "apache2", "git")
    [nic] = web.interfaces
    assert (nic.name, nic.switch, nic.address, nic.netmask, nic.gateway, nic.mac) == (
        "eth0", "lab", "10.0.0.10", "255.255.255.0", "10.0.0.1", "52:54:00:00:00:10")
    assert (dev.virt, dev.template, dev.memory_mib, dev.vcpus) == ("kvm", "ubuntu-22.04",
                                                                   4096, 4)
    assert dev.users == {"bob": "builder"} and dev.root_passwd is None
    assert dev.packages == ("openssh-server", "emacs", "vim", "valgrind", "firefox-esr",
                            "thunderbird")
    assert [(n.address, n.mac) for n in dev.interfaces] == [("10.0.0.20", "52:54:00:00:00:20")]
    assert (router.virt, router.template, router.memory_mib) == ("lxc", "debian-12-rootfs", 256)
    lan, outside = router.interfaces
    assert (lan.switch, lan.address) == ("lab", "10.0.0.2")
    assert (outside.bridge, outside.address, outside.netmask, outside.gateway) == (
        "br0", "192.168.1.50", "255.255.255.0", "192.168.1.1")
    switch = project.switches["lab"]
    assert (switch.mode, switch.address) == ("nat", "10.0.0.1/24")
    assert found == LAB_WARNINGS


def test_the_header_lists_each_template_with_its_command(tmp_path: Path) -> None:
    project = convert_file(source(tmp_path, LAB)).project
    assert project.startswith("# Converted by `corral convert` from the vmgen configuration")
    assert "#     corral template build debian --release bookworm --name debian-12\n" in project
    assert "#     corral template add ubuntu-22.04 IMAGE\n" in project
    assert ("#     corral template build debian --release bookworm --rootfs --name "
            "debian-12-rootfs\n") in project
    assert "# The lab's web server\nhost web {" in project


def test_a_configparser_rewrite_gives_the_same_project(tmp_path: Path) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(LAB)
    rewritten = io.StringIO()
    parser.write(rewritten)
    assert "; A vmgen lab" not in rewritten.getvalue()
    first = convert_file(source(tmp_path, LAB))
    again = convert_file(source(tmp_path, rewritten.getvalue()))
    assert without_comments(again.project) == without_comments(first.project)
    assert [w.message for w in again.warnings] == [w.message for w in first.warnings]


def test_the_cli_writes_the_project_that_show_reads(tmp_path: Path) -> None:
    path = source(tmp_path, LAB)
    out = tmp_path / "lab.corral"
    done = corral("convert", str(path), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert f"{path}:47: warning: dev: a virtualbox VM runs under KVM/QEMU" in done.stderr
    assert corral("validate", str(out)).returncode == 0
    shown = corral("show", "--json", str(out))
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    hosts = data["hosts"]
    assert {n: (h["virt"], h["memory_mib"], h["vcpus"]) for n, h in hosts.items()} == {
        "web": ("kvm", 1024, 2), "dev": ("kvm", 4096, 4), "router": ("lxc", 256, 1)}
    assert hosts["web"]["interfaces"] == [{
        "name": "eth0", "switch": "lab", "address": "10.0.0.10", "netmask": "255.255.255.0",
        "gateway": "10.0.0.1", "mac": "52:54:00:00:00:10"}]
    assert hosts["web"]["users"] == {"alice": "wonderland"}
    assert hosts["dev"]["packages"][-2:] == ["firefox-esr", "thunderbird"]
    assert data["switches"]["lab"]["mode"] == "nat"
    done = corral("convert", "--from", "vmgen", "--json", str(path))
    assert json.loads(done.stdout)["format"] == "vmgen"


VARIANT = """\
# a single machine, written by hand
[Machine]
Name : box
TYPE: lxc
virtualization = openvz
os = Debian
Release = 12.4   ; the point release does not matter

[hardware]
ram=512
memory_limit: 256
vcpus = 1
cpus = 2
disk_limit = 8
colour = blue

[disks.sda]
size = 6
partitions = /boot:1G, /:5G
[disks.data]
size = 4

[network.eth0]
address = 10.1.0.5
mode = dhcp
[network.eth1]
switch = back
mode = isolated
address = 172.16.0.9

[users]
carol = first
[user carol]
password = second
shell = /bin/zsh

[applications]
installer = yum
install = vim,
    nmap, Bad_Name
    tcpdump

[extras]
foo = bar
"""


def test_comments_colons_spacing_and_dotted_sections(tmp_path: Path) -> None:
    project, _ = loaded(tmp_path, VARIANT, "variant.ini")
    [box] = project.hosts.values()
    assert box.name == "box"
    assert (box.virt, box.template) == ("lxc", "debian-12-rootfs")
    # A container has no disks: its disk sizes are warned, not carried over.
    assert (box.memory_mib, box.maxmem_mib, box.vcpus, box.size_mib) == (512, 512, 2, None)
    assert box.disks == ()
    assert box.users == {"carol": "second"}
    assert box.packages == ("vim", "nmap", "tcpdump")
    eth0, eth1 = box.interfaces
    assert (eth0.switch, eth0.address) == ("lan", "10.1.0.5")
    assert (eth1.switch, eth1.address, eth1.netmask) == ("back", "172.16.0.9", "255.255.255.0")
    assert project.switches["lan"].address == "10.1.0.1/24"
    assert project.switches["back"].address is None


def test_contradictions_and_unknown_keys_warn_at_their_lines(tmp_path: Path) -> None:
    _, found = loaded(tmp_path, VARIANT, "variant.ini")
    assert found == [
        (5, "[Machine] virtualization = openvz contradicts type = lxc (line 4): the later "
            "line wins"),
        (5, "box: OpenVZ containers are not Corral's: it is an lxc container"),
        (11, "box: memory_limit 256 is below memory 512: the limit is raised to 512M"),
        (13, "[hardware] cpus = 2 contradicts vcpus = 1 (line 12): the later line wins"),
        (14, "box: disk_limit is not carried over: a container's root is a directory, which "
             "has no size"),
        (15, "[hardware] key colour is not a vmgen key of this section (cpus, memory, "
             "memory_limit, disk_size, disk_limit): not carried over"),
        (17, "box: disk sda is not carried over: a container has no disks (its root is a "
             "directory)"),
        (19, "[disks.sda] partitions = /boot:1G, /:5G: a partition layout cannot be said in "
             "Corral: the disk is given whole to the guest: not carried over"),
        (20, "box: disk data is not carried over: a container has no disks (its root is a "
             "directory)"),
        (25, "box eth0: mode dhcp contradicts the static address 10.1.0.5: the static "
             "address is kept"),
        (29, "box eth1: address 172.16.0.9 has no netmask: /24 is assumed"),
        (34, "box: the password of carol contradicts [users] (line 32): this one is kept"),
        (35, "[user carol] shell = /bin/zsh: a user's shell cannot be said in Corral: not "
             "carried over"),
        (38, "box: installer yum is not debian's: not carried over (the guest's own package "
             "manager installs the packages)"),
        (39, "application 'bad_name' is neither one vmgen lists nor a Debian package name: "
             "not carried over"),
        (43, "section [extras] is not a vmgen section: not carried over"),
    ]


def test_missing_optional_keys_give_defaults_without_warnings(tmp_path: Path) -> None:
    project, found = loaded(tmp_path, "[machine]\ntype = lxc\n", "tiny box.ini")
    assert found == []
    assert project.name == "tiny-box"
    [host] = project.hosts.values()
    assert (host.name, host.virt, host.template) == ("tiny-box", "lxc", "debian-12-rootfs")
    assert (host.memory_mib, host.interfaces, host.packages, host.users) == (
        SiteConfig().defaults.memory, (), (), {})


def test_a_repeated_key_and_default_keys(tmp_path: Path) -> None:
    text = ("[DEFAULT]\nmemory = 768\nshoe_size = 44\n\n[machine]\nname = a\n"
            "[hardware]\ncpus = 1\ncpus = 3\n")
    project, found = loaded(tmp_path, text)
    host = project.hosts["a"]
    assert (host.memory_mib, host.vcpus) == (768, 3)
    assert found == [
        (3, "[DEFAULT] key shoe_size is a key of no vmgen section: not carried over"),
        (9, "key cpus of [hardware] is given again (first at line 8): the later value wins"),
    ]


def test_several_machines_share_switches_and_shared_sections(tmp_path: Path) -> None:
    text = """\
[machine]
os = debian
release = trixie
[hardware]
memory = 512
[machine a]
[machine b]
[b hardware]
memory = 1G
[network eth0]
switch = backbone
mode = isolated
[b network eth0]
address = 10.9.0.2
netmask = 255.255.0.0
[a network eth0]
address = dhcp
[machine c]
type = kvm
os = windows 7
[c network eth0]
switch = out
mode = route
[c applications]
install = browser
"""
    project, found = loaded(tmp_path, text)
    a, b, c = (project.hosts[n] for n in "abc")
    assert (a.template, a.memory_mib, b.memory_mib) == ("debian-13", 512, 1024)
    assert (c.template, c.memory_mib, c.packages) == ("windows-7", 512, ())
    assert [(n.switch, n.address) for n in a.interfaces] == [("backbone", "dhcp")]
    assert [(n.switch, n.address) for n in b.interfaces] == [("backbone", "10.9.0.2")]
    switch = project.switches["backbone"]
    assert (switch.mode, switch.address) == ("isolated", "10.9.0.1/16")
    assert [(n.switch, n.address) for n in c.interfaces] == [("out", "dhcp")]
    assert (project.switches["out"].mode, project.switches["out"].address) == (
        "route", "10.20.1.1/24")
    assert found == [
        (20, "windows 7: Corral builds Debian templates only: register template windows-7 "
             "with `corral template add`"),
        (25, "c: applications of a Windows guest are not carried over: Corral installs "
             "packages with the guest's package manager"),
    ]


@pytest.mark.parametrize(("text", "line", "column", "fragment"), [
    ("[machine]\ntype = kvm\n\n[hardware]\nmemory = 512\nthis is not a key\n", 6, 1,
     "neither a section header, a 'key = value' line nor a comment"),
    ("[machine]\ntype = kvm\n\n  = 3\n", 4, 3,
     "neither a section header, a 'key = value' line nor a comment"),
    ("type = kvm\n[machine]\n", 1, 1, "a key before any section"),
    ("[machine]\ntype = kvm\n[hardware]\n\n[hardware]\n", 5, 1,
     "section [hardware] is given again (first at line 3)"),
    ("[machine]\n[disk sdb]\nsize = 1\n[disks.sdb]\nsize = 2\n", 4, 1,
     "section [disks.sdb] is [disk sdb] again (first at line 2)"),
])
def test_malformed_input_is_one_positioned_error(tmp_path: Path, text: str, line: int,
                                                 column: int, fragment: str) -> None:
    path = source(tmp_path, text)
    with pytest.raises(SourceErrors) as caught:
        convert_file(path, "vmgen")
    [diagnostic] = caught.value.diagnostics
    assert (diagnostic.span.line, diagnostic.span.column) == (line, column)
    assert diagnostic.message == fragment
    done = corral("convert", "--from", "vmgen", str(path))
    assert done.returncode == 1
    assert f"{path}:{line}:{column}: error: {fragment}" in done.stderr
    assert "Traceback" not in done.stderr


def test_detected_without_from(tmp_path: Path) -> None:
    assert vmgen.looks_like(LAB)
    assert vmgen.looks_like("[machine web]\n")
    assert vmgen.looks_like("# lab\n[network]\nnameservers = 10.0.0.1\n[machine]\nos = debian\n")
    assert not vmgen.looks_like("[network]\nx = 1\n[machine]\n")
    assert not vmgen.looks_like("[service]\ntype = kvm\n")
    assert not vmgen.looks_like("<VHMS/>")
    assert convert_file(source(tmp_path, LAB)).format == "vmgen"
    done = corral("convert", str(source(tmp_path, "[server]\nport = 1\n", "other.ini")))
    assert done.returncode == 1
    assert "--from dvhms|lcfg|vmgen" in done.stderr


def test_the_default_gateway_goes_where_it_fits_and_never_becomes_a_network_address(
        tmp_path: Path) -> None:
    text = """\
[machine a]
[a network]
gateway = 10.5.0.0
[a network eth0]
address = 10.5.0.9/24
[machine b]
[b network]
gateway = 192.168.9.1
[b network eth0]
switch = other
mode = isolated
address = 10.6.0.9/16
"""
    project, found = loaded(tmp_path, text)
    [a_nic] = project.hosts["a"].interfaces
    assert (a_nic.address, a_nic.gateway) == ("10.5.0.9", None)
    assert project.switches["lan"].address == "10.5.0.1/24"
    [b_nic] = project.hosts["b"].interfaces
    assert (b_nic.address, b_nic.netmask, b_nic.gateway) == ("10.6.0.9", "255.255.0.0", None)
    assert project.switches["other"].address is None
    assert found == [
        (3, "a eth0: gateway 10.5.0.0 is not another host address of 10.5.0.0/24: not carried "
            "over"),
        (8, "b: gateway 192.168.9.1 is on the network of no static interface: not carried "
            "over"),
    ]


def test_names_of_machines(tmp_path: Path) -> None:
    text = ("[machine]\nname = shared\n[machine web_1]\nname = other\n[machine web-1]\n"
            "[DEFAULT]\nname = ignored\n")
    project, found = loaded(tmp_path, text)
    assert list(project.hosts) == ["web-1"]
    assert found == [
        (2, "name shared of the shared [machine] is not carried over: the [machine NAME] "
            "sections name the machines"),
        (3, "machine 'web_1' becomes host web-1"),
        (4, "name other of [machine web_1] is not carried over: the section names the "
            "machine"),
        (5, "machine web-1 is named web-1 like an earlier one: not carried over"),
    ]
    single, _ = loaded(tmp_path, "[DEFAULT]\nname = from-default\n[machine]\n")
    assert list(single.hosts) == ["from-default"]

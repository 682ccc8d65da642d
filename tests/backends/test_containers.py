"""Containers (``lxc`` hosts) without a daemon: their domain XML checked with
``virt-xml-validate``, their directory (root from a tar, seed, console log)
made and removed on disk, and the reasons a service host runs none.

A container booted by the real LXC driver is tests/integration/test_containers.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from lxml import etree
from scenarios import PROJECT
from xmlvalid import validate

from corral.backends import BootSpec, DomainSpec, NicSpec
from corral.backends.libvirt import containers, domain_xml
from corral.model import Host, Interface, Virt

ROOT = f"/var/lib/corral/runs/{PROJECT}.lxc/c1/root"
SEED = f"/var/lib/corral/runs/{PROJECT}.lxc/c1/seed"


def container_spec(**fields: object) -> DomainSpec:
    nics = (Interface(name="eth0", switch="lan", address="dhcp", mac="52:54:00:cc:00:01"),
            Interface(name="uplink", bridge="br0", mac="52:54:00:cc:00:02"))
    base: dict[str, object] = {"name": "c1", "memory_mib": 256, "vcpus": 2, "virt": Virt.LXC,
                               "interfaces": nics, "service_host": "local"}
    base.update(fields)
    host = Host(**base)  # type: ignore[arg-type]
    return DomainSpec(
        project=PROJECT, host=host, virt_type="lxc",
        boot=BootSpec(template="deb-rootfs", kind="rootfs"), disk_path=ROOT, seed_path=SEED,
        nics=(NicSpec("52:54:00:cc:00:01", network=f"{PROJECT}-lan", name="eth0"),
              NicSpec("52:54:00:cc:00:02", bridge="br0", name="uplink")),
        model_hash="h1",
    )


def test_container_xml_is_valid_and_mounts_root_seed_and_console() -> None:
    built = domain_xml.build_domain(container_spec(cpus="0-1"), console_log="")
    text = domain_xml.to_string(built)
    validate(text, "domain", "container domain")
    root = etree.fromstring(text.encode())
    assert root.get("type") == "lxc"
    assert root.findtext("os/type") == "exe" and root.findtext("os/init") == "/sbin/init"
    mounts = {m.find("target").get("dir"): (m.find("source").get("dir"),
                                            m.find("readonly") is not None)
              for m in root.iterfind("devices/filesystem")}
    assert mounts == {
        "/": (ROOT, False),
        "/var/lib/cloud/seed/nocloud": (SEED, True),
        "/var/log/corral": (str(Path(ROOT).parent / "console"), False),
    }
    nics = [(i.get("type"), i.find("guest").get("dev"), i.find("model"))
            for i in root.iterfind("devices/interface")]
    assert nics == [("network", "eth0", None), ("bridge", "uplink", None)]
    assert root.find("devices/disk") is None and root.find("devices/memballoon") is None
    assert root.find("devices/console").get("type") == "pty"
    assert root.find("vcpu").text == "2" and root.find("vcpu").get("cpuset") == "0-1"
    assert root.findtext("currentMemory") == str(256 * 1024)


def test_container_redefinition_keeps_what_corral_does_not_manage() -> None:
    built = domain_xml.build_domain(container_spec(), console_log="")
    etree.SubElement(built.find("devices"), "hostdev", mode="capabilities", type="misc")
    changed = domain_xml.apply_spec(built, container_spec(memory_mib=512), console_log="")
    assert changed.findtext("currentMemory") == str(512 * 1024)
    assert changed.find("devices/hostdev") is not None  # an administrator's device stays
    assert len(changed.findall("devices/filesystem")) == 3  # mounts replaced, not doubled
    assert len(changed.findall("devices/console")) == 1


def test_root_is_extracted_once_and_deleted_with_its_directory(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sbin").mkdir(parents=True)
    (tree / "sbin/init").write_text("#!/bin/sh\n")
    (tree / "sbin/init").chmod(0o4755)
    tar = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-c", "-f", str(tar), "--numeric-owner", "-C", str(tree), "."],
                   check=True)
    dirs = containers.dirs_of(str(tmp_path / "runs"), PROJECT, "c1")
    root = containers.make_root(dirs, "deb-rootfs", tar, "d1")
    assert (root / "sbin/init").stat().st_mode & 0o7777 == 0o4755  # modes kept
    (root / "data").write_text("written in the container")
    assert containers.make_root(dirs, "deb-rootfs", tar, "d1") == root
    assert (root / "data").exists()  # made already: its data kept
    assert tar.read_bytes()  # the template's file is only read
    seed = containers.write_seed(dirs, {"meta-data": "m\n", "user-data": "u\n"})
    containers.write_seed(dirs, {"meta-data": "m2\n"})
    assert sorted(p.name for p in Path(seed).iterdir()) == ["meta-data"]
    assert (Path(seed) / "meta-data").read_text() == "m2\n"
    containers.delete(dirs)
    assert not dirs.base.exists() and not dirs.base.parent.exists()


def test_a_root_cut_short_is_made_again(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "etc").mkdir()
    tar = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-c", "-f", str(tar), "-C", str(tree), "."], check=True)
    dirs = containers.dirs_of(str(tmp_path / "runs"), PROJECT, "c1")
    dirs.root.mkdir(parents=True)
    (dirs.root / "half").write_text("")  # no stamp: its making was interrupted
    root = containers.make_root(dirs, "deb-rootfs", tar, "d1")
    assert not (root / "half").exists() and (root / "etc").is_dir()


def test_an_unreadable_template_tar_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "rootfs.tar"
    bad.write_text("not a tar")
    dirs = containers.dirs_of(str(tmp_path / "runs"), PROJECT, "c1")
    with pytest.raises(Exception, match="cannot extract template deb-rootfs"):
        containers.make_root(dirs, "deb-rootfs", bad, "d1")
    assert not dirs.root.exists() and not (dirs.base / "root.partial").exists()


def test_console_log_is_emptied_before_a_start_and_links_are_not_followed(
    tmp_path: Path,
) -> None:
    dirs = containers.dirs_of(str(tmp_path / "runs"), PROJECT, "c1")
    dirs.console.mkdir(parents=True)
    dirs.console_log.write_text("corral-ready c1\n")
    assert "corral-ready c1" in containers.read_console(dirs)
    containers.clear_console(dirs)
    assert containers.read_console(dirs) == ""
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    dirs.console_log.unlink()
    dirs.console_log.symlink_to(victim)  # what a container's root could put there
    assert containers.read_console(dirs) == ""
    containers.clear_console(dirs)
    assert victim.read_text() == "keep me"
    assert dirs.console_log.is_file() and not dirs.console_log.is_symlink()


def test_service_hosts_that_run_no_containers_say_why() -> None:
    remote = containers.ContainerDriver("h1", "qemu+tls://10.0.0.2/system")
    assert remote.uri is None
    reason = remote.why_not() or ""
    assert "not this machine's qemu:///system" in reason and "h1" in reason
    assert containers.ContainerDriver("t", "test:///default").why_not() is not None
    assert containers.sibling_uri("qemu:///system") == "lxc:///system"


def test_the_hybrid_cgroup_layout_is_named_as_the_reason() -> None:
    hybrid = ("35 25 0:30 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw\n"
              "36 25 0:31 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory\n")
    reason = containers.hybrid_problem(hybrid) or ""
    assert "/sys/fs/cgroup/unified" in reason and "scripts/start-daemons.sh" in reason
    hidden = "36 25 0:31 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory\n"
    assert containers.hybrid_problem(hidden) is None

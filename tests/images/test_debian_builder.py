"""The debian builder's checks of what it is asked for, before anything runs.

Building and booting a Debian template is the integration test's
(tests/integration/test_debian_template.py)."""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from corral.errors import InvalidRequest
from corral.images.debian_builder import (
    BASE_PACKAGES,
    ROOTFS_BASE_PACKAGES,
    _configure,
    _configure_container,
    build_debian,
    build_debian_rootfs,
    check_packages,
    check_size,
    tar_command,
    tar_tree,
)
from corral.ops.templates import DebianOptions


def test_package_names_are_debian_names_kept_once_in_order() -> None:
    assert check_packages(["htop", "g++", "libc6-dev", "htop", "python3.11"]) == (
        "htop", "g++", "libc6-dev", "python3.11")
    for bad in ("Htop", "-rf", "a b", "x;rm", "", "curl=1.0"):
        with pytest.raises(InvalidRequest, match="is not a package name apt accepts"):
            check_packages(["htop", bad])


def test_sizes_are_whole_mebibytes_or_gibibytes() -> None:
    assert check_size("2G") == "2G" and check_size("512M") == "512M"
    for bad in ("0G", "2", "2T", "1.5G", "G", "-2G"):
        with pytest.raises(InvalidRequest, match="give a whole number"):
            check_size(bad)


def test_an_unknown_release_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="release 'woody' is not one Corral builds"):
        build_debian(tmp_path / "w", release="woody")
    assert not (tmp_path / "w").exists()


def test_options_given_or_not() -> None:
    assert DebianOptions.given(None, None, None) is None
    assert DebianOptions.given("trixie", None, None) == DebianOptions(release="trixie")
    assert DebianOptions.given(None, ["htop"], "3G") == DebianOptions(
        packages=("htop",), size="3G")


def test_a_container_has_no_kernel_udev_or_root_disk_to_grow() -> None:
    assert set(BASE_PACKAGES) - set(ROOTFS_BASE_PACKAGES) == {
        "linux-image-cloud-amd64", "udev", "e2fsprogs"}
    assert [p for p in BASE_PACKAGES if p in ROOTFS_BASE_PACKAGES] == list(ROOTFS_BASE_PACKAGES)
    assert {"systemd-sysv", "cloud-init", "openssh-server", "sudo"} <= set(ROOTFS_BASE_PACKAGES)


def test_a_rootfs_with_an_unknown_release_is_refused_before_anything_is_made(
        tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="release 'woody' is not one Corral builds"):
        build_debian_rootfs(tmp_path / "w", release="woody")
    with pytest.raises(InvalidRequest, match="is not a package name apt accepts"):
        build_debian_rootfs(tmp_path / "w", packages=["x;rm"])
    assert not (tmp_path / "w").exists()


def fake_tree(root: Path) -> Path:
    """The parts of an installed Debian tree the configuration touches."""
    for directory in ("etc/cloud/cloud.cfg.d", "etc/ssh", "etc/systemd/system/getty.target.wants",
                      "var/lib/dbus", "var/cache/apt/archives"):
        (root / directory).mkdir(parents=True)
    (root / "etc/fstab").write_text("# UNCONFIGURED FSTAB\n")
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (root / "var/lib/dbus/machine-id").symlink_to("/etc/machine-id")
    (root / "etc/ssh/ssh_host_ed25519_key").write_text("secret")
    (root / "etc/ssh/ssh_host_ed25519_key.pub").write_text("public")
    (root / "etc/ssh/sshd_config").write_text("# kept\n")
    (root / "etc/hostname").write_text("buildhost\n")
    (root / "etc/systemd/system/getty.target.wants/getty@tty1.service").symlink_to(
        "/lib/systemd/system/getty@.service")
    (root / "var/cache/apt/archives/sudo_1.9_amd64.deb").write_bytes(b"deb")
    return root


def test_a_container_tree_is_configured_for_libvirt_lxc(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path / "root")
    _configure_container(tree)

    assert (tree / "etc/fstab").read_text().strip().startswith("#")  # nothing to mount
    cloud = yaml.safe_load((tree / "etc/cloud/cloud.cfg.d/90_corral.cfg").read_text())
    assert cloud == {"datasource_list": ["NoCloud", "None"], "locale": "C.UTF-8",
                     "growpart": {"mode": "off"}, "resize_rootfs": False}
    assert (tree / "var/lib/cloud/seed/nocloud").is_dir()
    assert (tree / "etc/machine-id").read_text() == ""
    assert not (tree / "var/lib/dbus/machine-id").is_symlink()
    assert sorted(p.name for p in (tree / "etc/ssh").iterdir()) == ["sshd_config"]
    assert (tree / "etc/hostname").read_text() == "debian\n"
    system = tree / "etc/systemd/system"
    assert os.readlink(system / "default.target") == "/lib/systemd/system/multi-user.target"
    masked = sorted(p.name for p in system.iterdir()
                    if p.is_symlink() and os.readlink(p) == "/dev/null")
    assert masked == sorted([
        *(f"getty@tty{n}.service" for n in range(1, 7)),
        "systemd-udevd.service", "systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
        "systemd-udev-trigger.service", "systemd-udev-settle.service",
        "systemd-remount-fs.service", "systemd-modules-load.service",
        "sys-kernel-config.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
        "sys-fs-fuse-connections.mount", "dev-hugepages.mount",
    ])
    assert not (system / "console-getty.service").exists()  # the login on /dev/console
    assert list((tree / "var/cache/apt/archives").iterdir()) == []
    _configure_container(tree)  # again: the links are replaced, not refused


def test_the_vm_tree_keeps_its_root_disk_and_masks_nothing(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path / "root")
    _configure(tree)
    assert (tree / "etc/fstab").read_text() == "/dev/vda / ext4 rw,errors=remount-ro 0 1\n"
    assert "resize_rootfs" not in (tree / "etc/cloud/cloud.cfg.d/90_corral.cfg").read_text()
    assert not any(os.path.islink(p) and os.readlink(p) == "/dev/null"
                   for p in (tree / "etc/systemd/system").iterdir())


@pytest.mark.skipif(os.geteuid() != 0, reason="owners and device nodes need root")
def test_the_tar_keeps_owners_modes_devices_links_and_capabilities(tmp_path: Path) -> None:
    tree = tmp_path / "root"
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "dev").mkdir()
    sudo = tree / "usr/bin/sudo"
    sudo.write_bytes(b"\x7fELF")
    sudo.chmod(0o4755)
    ping = tree / "usr/bin/ping"
    ping.write_bytes(b"\x7fELF")
    subprocess.run(["setcap", "cap_net_raw+ep", str(ping)], check=True)
    owned = tree / "usr/bin/owned"
    owned.write_text("x")
    os.chown(owned, 4321, 8765)  # ids no user of this machine has
    os.link(sudo, tree / "usr/bin/sudoedit")
    os.mknod(tree / "dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    tar = tmp_path / "rootfs.tar"

    tar_tree(tree, tar)

    with tarfile.open(tar) as packed:
        members = {m.name: m for m in packed.getmembers()}
    assert members["./usr/bin/sudo"].mode == 0o4755
    assert (members["./usr/bin/owned"].uid, members["./usr/bin/owned"].gid) == (4321, 8765)
    assert members["./usr/bin/sudoedit"].islnk()
    assert members["./usr/bin/sudoedit"].linkname == "./usr/bin/sudo"
    null = members["./dev/null"]
    assert null.ischr() and (null.devmajor, null.devminor) == (1, 3)
    assert "SCHILY.xattr.security.capability" in members["./usr/bin/ping"].pax_headers
    assert tar_command(tree, tar)[:5] == ["tar", "--numeric-owner", "--xattrs",
                                          "--xattrs-include=*", "--acls"]

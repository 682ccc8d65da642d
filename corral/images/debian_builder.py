"""Build a Debian template from Debian packages: ``corral template build debian``.

A real distribution guest, for labs that need more than the ``tiny``
template's busybox: Debian's cloud kernel and its initramfs (booted directly,
so no boot loader is installed), systemd, cloud-init (which applies Corral's
NoCloud seed: users, keys, files, runcmd, packages, the network) and an SSH
server, plus whatever packages the caller names.

``mmdebstrap`` makes the root tree from the mirror; ``mke2fs -d`` turns the
tree into an ext4 image without mounting it (no loop device), and
``qemu-img convert`` into qcow2. Downloaded packages are kept in a cache
directory between builds, so a rebuild reads the mirror only for its
indexes and for packages that changed.

:func:`build_debian_rootfs` makes the root filesystem of an ``lxc`` host's
container instead: the same tree without a kernel, configured to start as a
container's ``/sbin/init``, packed by GNU tar into one file that keeps what a
root tree needs (owners, modes with setuid bits, device nodes, hard links,
extended attributes and ACLs).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from corral.errors import BackendError, InvalidRequest, NotFoundError
from corral.images import qemuimg
from corral.images.installers import installer_for
from corral.images.tiny_builder import make_root_filesystem

DEFAULT_RELEASE = "bookworm"
RELEASES = ("bookworm", "trixie")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SIZE = "2G"
DEFAULT_CACHE = Path("/var/cache/corral/debs")
CMDLINE = "console=ttyS0 root=/dev/vda rw no_timer_check"

# What every Debian template holds: the kernel (virtio built in) with its
# initramfs, an init system with the system bus (systemd-logind needs it to
# turn the ACPI power button, libvirt's shutdown, into a clean poweroff),
# cloud-init with what its Debian network renderer
# (ifupdown, "eni") runs, resolvconf (without it the name servers of a static
# interface, its "dns-nameservers", are ignored, and a DHCP interface's client
# owns /etc/resolv.conf alone), what grows the root filesystem to the run
# copy's size (resize2fs), and the SSH server the guests are reached through.
BASE_PACKAGES = (
    "linux-image-cloud-amd64",
    "systemd-sysv",
    "udev",
    "dbus",
    "cloud-init",
    "openssh-server",
    "ifupdown",
    "isc-dhcp-client",
    "resolvconf",
    "netbase",
    "e2fsprogs",
    "iproute2",
    "sudo",
    "ca-certificates",
)
# A container runs on its service host's kernel, whose devices the host's udev
# manages (libvirt gives the container a fixed /dev), and its root is a
# directory, not a filesystem to grow: no kernel, udev or e2fsprogs in it.
_NOT_IN_A_CONTAINER = frozenset({"linux-image-cloud-amd64", "udev", "e2fsprogs"})
ROOTFS_BASE_PACKAGES = tuple(p for p in BASE_PACKAGES if p not in _NOT_IN_A_CONTAINER)
_SIZE = re.compile(r"[1-9][0-9]*[MG]")
# NoCloud only: without this, cloud-init probes a dozen cloud metadata services
# at every boot, each waiting for its timeout on a lab network.
# The locale: cloud-init's default, en_US.UTF-8, is not generated in the
# template, and setting it fails the whole boot's status; C.UTF-8 always exists.
_CLOUD_CFG = """\
# Written by Corral's template builder: the seed is a NoCloud ISO (cidata).
datasource_list: [ NoCloud, None ]
locale: C.UTF-8
"""
_FSTAB = "/dev/vda / ext4 rw,errors=remount-ro 0 1\n"
# A container's NoCloud seed is a directory its service host writes into the
# container's copy: /var/lib/cloud/seed/nocloud/ is one NoCloud reads by default,
# with network-config beside user-data and meta-data (a `seedfrom` path would
# not read network-config). There is no disk to grow, so cloud-init is told not
# to try, rather than warn at every first boot.
_CONTAINER_CLOUD_CFG = """\
# Written by Corral's template builder: the seed is the directory
# /var/lib/cloud/seed/nocloud/ (user-data, meta-data, network-config).
datasource_list: [ NoCloud, None ]
locale: C.UTF-8
growpart:
  mode: "off"
resize_rootfs: false
"""
# An empty fstab: a container's root is mounted by libvirt before init starts,
# and there is no root device to name.
_CONTAINER_FSTAB = "# The container's root is mounted by libvirt; nothing to mount here.\n"
# Units that cannot work in a container, masked so that the boot neither waits
# for them nor reports them failed (each a link to /dev/null, what
# `systemctl mask` makes). console-getty.service is kept: it is the login on
# /dev/console, the container's console.
_CONTAINER_MASKS = (
    # Devices belong to the service host's kernel and udev; libvirt gives the
    # container a fixed /dev. (udev is not installed, but a package asked for
    # may bring it in.)
    "systemd-udevd.service",
    "systemd-udevd-control.socket",
    "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    # Virtual terminals are the host's: there is no /dev/tty1..6 to log in on.
    *(f"getty@tty{n}.service" for n in range(1, 7)),
    # The root is a directory libvirt mounted, with no fstab entry to remount.
    "systemd-remount-fs.service",
    # Kernel interfaces are the host's kernel's, mounted read-only or not at all.
    "sys-kernel-config.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-fs-fuse-connections.mount",
    "dev-hugepages.mount",
    # A container cannot load kernel modules (libvirt drops CAP_SYS_MODULE).
    "systemd-modules-load.service",
)

# Called as each step ends, with what it did; there are STEPS of them.
Advance = Callable[[str], None]
STEPS = 4
ROOTFS_STEPS = 3


@dataclass(frozen=True, slots=True)
class DebianImage:
    """A built Debian template: ``kernel`` + ``initrd`` booted with ``cmdline``,
    root ``disk``; ``packages`` are those asked for besides the base."""

    kernel: Path
    initrd: Path
    disk: Path
    cmdline: str
    release: str
    packages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DebianRootfs:
    """A built container root filesystem: ``rootfs`` is its tar; ``packages``
    are those asked for besides the base."""

    rootfs: Path
    release: str
    packages: tuple[str, ...]


def check_packages(packages: Sequence[str]) -> tuple[str, ...]:
    """Debian package names, refused one by one when they are not names."""
    return installer_for("debian").check(packages)


def check_size(size: str) -> str:
    if not _SIZE.fullmatch(size):
        raise InvalidRequest(f"disk size '{size}': give a whole number of M or G, as 2G")
    return size


def build_debian(
    workdir: Path,
    *,
    release: str = DEFAULT_RELEASE,
    packages: Sequence[str] = (),
    size: str = DEFAULT_SIZE,
    mirror: str = DEFAULT_MIRROR,
    cache: Path = DEFAULT_CACHE,
    advance: Advance | None = None,
) -> DebianImage:
    """Build into ``workdir``: ``vmlinuz``, ``initrd.img`` and ``disk.qcow2``."""
    check_release(release)
    wanted = check_packages(packages)
    check_size(size)

    def step(done: str) -> None:
        _advance(advance, done)

    with _installed_tree(workdir, release, (*BASE_PACKAGES, *wanted), mirror, cache) as tree:
        step(f"Debian {release} installed")
        image = DebianImage(kernel=workdir / "vmlinuz", initrd=workdir / "initrd.img",
                            disk=workdir / "disk.qcow2", cmdline=CMDLINE, release=release,
                            packages=wanted)
        _take_boot_files(tree, image)
        _configure(tree)
        step("configured for cloud-init")
        raw = workdir / "root.ext4"
        make_root_filesystem(tree, raw, size, label="debian-root")
        shutil.rmtree(tree)
        step("root filesystem made")
        qemuimg.convert(raw, image.disk, "qcow2", src_format="raw")
        raw.unlink()
        step("converted to qcow2")
        return image


def build_debian_rootfs(
    workdir: Path,
    *,
    release: str = DEFAULT_RELEASE,
    packages: Sequence[str] = (),
    mirror: str = DEFAULT_MIRROR,
    cache: Path = DEFAULT_CACHE,
    advance: Advance | None = None,
) -> DebianRootfs:
    """Build a container's root filesystem into ``workdir``: ``rootfs.tar``."""
    check_release(release)
    wanted = check_packages(packages)
    with _installed_tree(workdir, release, (*ROOTFS_BASE_PACKAGES, *wanted), mirror,
                         cache) as tree:
        _advance(advance, f"Debian {release} installed")
        _configure_container(tree)
        _advance(advance, "configured for a container")
        made = DebianRootfs(rootfs=workdir / "rootfs.tar", release=release, packages=wanted)
        tar_tree(tree, made.rootfs)
        _advance(advance, "packed into rootfs.tar")
        return made


@contextmanager
def _installed_tree(workdir: Path, release: str, packages: Sequence[str], mirror: str,
                    cache: Path) -> Iterator[Path]:
    """The root tree ``mmdebstrap`` installs in ``workdir/root``, removed afterwards
    whatever happens (a tree left by an earlier build is removed first)."""
    workdir.mkdir(parents=True, exist_ok=True)
    tree = workdir / "root"
    shutil.rmtree(tree, ignore_errors=True)
    try:
        _mmdebstrap(tree, release, packages, mirror, cache)
        yield tree
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def check_release(release: str) -> str:
    if release not in RELEASES:
        raise InvalidRequest(f"Debian release '{release}' is not one Corral builds",
                             hint=f"releases: {', '.join(RELEASES)}")
    return release


def _advance(advance: Advance | None, done: str) -> None:
    if advance is not None:
        advance(done)


def tar_command(tree: Path, target: Path) -> list[str]:
    """GNU tar writing ``tree`` into ``target``: numeric owners (the container's
    ids, not names looked up on this machine), extended attributes (file
    capabilities such as ping's live there) and ACLs; modes, device nodes and
    hard links are kept by tar itself. A container's root is extracted with
    the same options."""
    return ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
            "-C", str(tree), "-cf", str(target), "."]


def tar_tree(tree: Path, target: Path) -> None:
    """Pack ``tree`` into the tar ``target`` (see :func:`tar_command`)."""
    if shutil.which("tar") is None:
        raise NotFoundError("tar is not installed", hint="install the Debian package tar")
    done = subprocess.run(tar_command(tree, target), capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        why = done.stderr.strip()[-500:] or f"exit {done.returncode}"
        raise BackendError(f"tar could not pack the root filesystem: {why}")


def _mmdebstrap(tree: Path, release: str, packages: Sequence[str], mirror: str,
                cache: Path) -> None:
    if shutil.which("mmdebstrap") is None:
        raise NotFoundError("mmdebstrap is not installed",
                            hint="install the Debian package mmdebstrap (make setup does)")
    cache.mkdir(parents=True, exist_ok=True)
    command = mmdebstrap_command(tree, release, packages, mirror, cache)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("E:")]
        why = "; ".join(lines[-3:]) or done.stderr.strip()[-500:] or f"exit {done.returncode}"
        raise BackendError(f"mmdebstrap could not install Debian {release}: {why}",
                           hint=f"is {mirror} reachable, and are the package names right?")


def mmdebstrap_command(tree: Path, release: str, packages: Sequence[str], mirror: str,
                       cache: Path) -> list[str]:
    """The ``mmdebstrap`` command line that installs the tree (the benchmark's
    floor runs it alone)."""
    return [
        "mmdebstrap", "--mode=root", "--variant=apt", "--format=directory", "--quiet",
        f"--include={','.join(packages)}",
        # Mirrors served from snapshots carry old Release dates.
        "--aptopt=Acquire::Check-Valid-Until \"false\"",
        "--aptopt=Acquire::Check-Date \"false\"",
        # dpkg syncs every file it writes by default; a template is written once.
        "--dpkgopt=force-unsafe-io",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-include=/usr/share/locale/locale.alias",
        "--skip=essential/unlink",
        f"--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/ && "
        f"find {cache} -maxdepth 1 -name '*.deb' -exec cp -t \"$1\"/var/cache/apt/archives/ {{}} +",
        # Into the cache by rename: a build running beside this one copies from
        # it, and must never see a package half written.
        f"--customize-hook=for deb in \"$1\"/var/cache/apt/archives/*.deb; do "
        f"[ -f \"$deb\" ] || continue; kept={cache}/$(basename \"$deb\"); "
        f"[ -e \"$kept\" ] || {{ cp \"$deb\" \"$kept.part.$$\" && "
        f"mv \"$kept.part.$$\" \"$kept\"; }}; done",
        release, str(tree), mirror,
    ]  # fmt: skip


def _take_boot_files(tree: Path, image: DebianImage) -> None:
    """The kernel and initramfs the packages installed, copied out for direct boot."""
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    initrds = sorted((tree / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise BackendError("the Debian tree has no kernel and initramfs in /boot",
                           hint="linux-image-cloud-amd64 should have installed them")
    shutil.copyfile(kernels[-1], image.kernel)
    shutil.copyfile(initrds[-1], image.initrd)


def _configure(tree: Path) -> None:
    """What a guest booted from a copy of this tree needs to become itself: a root
    filesystem entry, cloud-init told where its seed is, and no identity of its own
    (machine id, SSH host keys and hostname are made at the guest's first boot)."""
    (tree / "etc/fstab").write_text(_FSTAB)
    (tree / "etc/cloud/cloud.cfg.d/90_corral.cfg").write_text(_CLOUD_CFG)
    _forget_identity(tree)
    default = tree / "etc/systemd/system/default.target"
    default.unlink(missing_ok=True)
    default.symlink_to("/lib/systemd/system/multi-user.target")  # no display here
    _drop_downloads(tree)


def _configure_container(tree: Path) -> None:
    """What a container whose root is a copy of this tree needs to become itself:
    an empty fstab (libvirt mounts its root), cloud-init told that its seed is
    the NoCloud directory, no identity of its own, the multi-user target, and
    the units that cannot work in a container masked (see ``_CONTAINER_MASKS``)."""
    (tree / "etc/fstab").write_text(_CONTAINER_FSTAB)
    (tree / "etc/cloud/cloud.cfg.d/90_corral.cfg").write_text(_CONTAINER_CLOUD_CFG)
    (tree / "var/lib/cloud/seed/nocloud").mkdir(parents=True, exist_ok=True)
    _forget_identity(tree)
    system = tree / "etc/systemd/system"
    system.mkdir(parents=True, exist_ok=True)
    default = system / "default.target"
    default.unlink(missing_ok=True)
    default.symlink_to("/lib/systemd/system/multi-user.target")
    for unit in _CONTAINER_MASKS:
        mask = system / unit
        mask.unlink(missing_ok=True)
        mask.symlink_to("/dev/null")
    _drop_downloads(tree)


def _forget_identity(tree: Path) -> None:
    """No machine id, SSH host keys or real hostname: each copy makes its own at
    its first boot, so no two guests share them."""
    (tree / "etc/machine-id").write_text("")
    dbus_id = tree / "var/lib/dbus/machine-id"
    if dbus_id.is_symlink() or dbus_id.exists():
        dbus_id.unlink()
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (tree / "etc/hostname").write_text("debian\n")


def _drop_downloads(tree: Path) -> None:
    """The packages downloaded for the tree (kept in the cache, not in a template)."""
    for leftover in (tree / "var/cache/apt/archives").glob("*.deb"):
        leftover.unlink()

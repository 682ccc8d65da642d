"""Containers: ``lxc`` hosts as libvirt LXC domains on the service host of this machine.

libvirt serves containers through its LXC driver, a connection of its own
(``lxc:///system``) to the same daemon that runs the QEMU guests, sharing its
networks: a container joins a switch exactly as a VM does. A service host
whose URI is ``qemu:///system`` therefore gets a sibling connection for its
containers, opened on first use; a remote service host gets none, because a
container's root is a directory that Corral makes here, and libvirt's
storage API moves files, not directory trees.

Each container has a directory of its own, ``RUNS/PROJECT.lxc/HOST/`` (a dot
cannot occur in a project name, so it never meets a project's pool
directory), holding:

* ``root/``: the container's root tree, extracted from its template's
  ``rootfs.tar`` (the template itself is only ever read);
* ``seed/``: the NoCloud documents, mounted read-only at
  ``/var/lib/cloud/seed/nocloud`` in the container, where cloud-init looks
  for a seed directory (a container has no CD drive for a seed ISO);
* ``console/``: mounted at ``/var/log/corral``; the seed has cloud-init copy
  its output to ``console.log`` there. libvirt keeps no log of a container's
  console (a ``<log>`` on an LXC console is ignored), so this file is the
  container's console log for readiness and ``corral vm log``; Corral empties
  it before each start so it holds the current boot, as a VM's does;
* ``template``: the name and digest of the template the root came from, so
  that making the root again is a no-op, and so that the directory is known
  to be Corral's before it is ever deleted.

Why not the hybrid cgroup layout: libvirt's LXC driver rebuilds the host's
cgroup mounts inside each container and cannot when a cgroup2 hierarchy is
mounted at ``/sys/fs/cgroup/unified`` beside the v1 controllers ("Unable to
create directory /sys/fs/cgroup/unified"). scripts/start-daemons.sh starts
libvirtd in a mount namespace without that mount; :func:`cgroup_problem`
says so, naming the mount, where libvirtd was started otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import libvirt
from lxml import etree

from corral.backends.libvirt.connection import Connection
from corral.errors import BackendError

SIBLING_URIS = {"qemu:///system": "lxc:///system"}
CONSOLE_FILE = "console.log"
HYBRID_UNIFIED = "/sys/fs/cgroup/unified"
_TAR_OPTIONS = ("--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls")


@dataclass(frozen=True, slots=True)
class ContainerDirs:
    """The directory of one container and its parts (see the module docstring)."""

    base: Path

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def seed(self) -> Path:
        return self.base / "seed"

    @property
    def console(self) -> Path:
        return self.base / "console"

    @property
    def console_log(self) -> Path:
        return self.console / CONSOLE_FILE

    @property
    def stamp(self) -> Path:
        return self.base / "template"


def dirs_of_root(root: str) -> ContainerDirs:
    """The directories of the container whose root is ``root``."""
    return ContainerDirs(Path(root).parent)


def project_dir(runs_dir: str, project: str) -> Path:
    return Path(runs_dir) / f"{project}.lxc"


def dirs_of(runs_dir: str, project: str, host: str) -> ContainerDirs:
    return ContainerDirs(project_dir(runs_dir, project) / host)


def sibling_uri(uri: str) -> str | None:
    """The LXC URI of the daemon behind ``uri``, where Corral can run containers."""
    return SIBLING_URIS.get(uri)


class ContainerDriver:
    """The sibling LXC connection of one service host, and why there is none."""

    def __init__(self, service_host: str, uri: str) -> None:
        self.service_host = service_host
        self.uri = sibling_uri(uri)
        self._connection = Connection(service_host, self.uri) if self.uri else None
        self._lock = threading.Lock()
        self._refused: str | None = None

    def why_not(self) -> str | None:
        """None when this service host runs containers, else the reason it cannot."""
        if self._connection is None:
            return (f"service host '{self.service_host}' is not this machine's qemu:///system: "
                    "a container's root is a directory Corral makes here, and libvirt cannot "
                    "copy a directory to another host")
        with self._lock:
            if self._refused is None:
                self._refused = self._probe() or ""
            return self._refused or None

    def _probe(self) -> str | None:
        try:
            conn = self._connection.get() if self._connection else None
        except BackendError as error:
            return (f"service host '{self.service_host}' has no LXC driver ({error.message}); "
                    "install libvirt-daemon-driver-lxc (make setup does) and restart libvirtd")
        if conn is None:
            return None
        return cgroup_problem()

    def conn(self) -> libvirt.virConnect:
        """The LXC connection; a BackendError saying why where there is none."""
        reason = self.why_not()
        if reason is not None or self._connection is None:
            raise BackendError(f"cannot run containers: {reason}")
        return self._connection.get()

    def open_conn(self) -> libvirt.virConnect | None:
        """The LXC connection where there is one (observing must not fail for want of it)."""
        return None if self.why_not() is not None else self.conn()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def cgroup_problem() -> str | None:
    """Why libvirtd's LXC driver cannot start containers here, judged from the
    mounts the running libvirtd sees; None when nothing is known to stand in the way."""
    mounts = _libvirtd_mounts()
    return hybrid_problem(mounts) if mounts is not None else None


def hybrid_problem(mountinfo: str) -> str | None:
    """The hybrid cgroup layout in ``mountinfo`` (``/proc/PID/mountinfo``), said as
    why containers cannot start; None without it."""
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == HYBRID_UNIFIED:
            return (f"libvirtd sees a cgroup2 hierarchy at {HYBRID_UNIFIED} beside the v1 "
                    "controllers (the hybrid layout), and libvirt's LXC driver cannot set up "
                    "a container's cgroups under it; start libvirtd with "
                    "scripts/start-daemons.sh, which hides that mount from it")
    return None


def _libvirtd_mounts() -> str | None:
    """``/proc/PID/mountinfo`` of the running libvirtd (None when there is none to read)."""
    for pid_file in ("/run/libvirtd.pid", "/var/run/libvirtd.pid"):
        try:
            pid = int(Path(pid_file).read_text().strip())
            return Path(f"/proc/{pid}/mountinfo").read_text()
        except (OSError, ValueError):
            continue
    return None


def root_of(domain: libvirt.virDomain) -> str | None:
    """The root directory a container domain mounts at ``/`` (None: not a container)."""
    root = etree.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).encode())
    for mount in root.iterfind("devices/filesystem"):
        target, source = mount.find("target"), mount.find("source")
        if target is not None and target.get("dir") == "/" and source is not None:
            return source.get("dir")
    return None


# ---- the container's directory


def make_root(dirs: ContainerDirs, template: str, tar: Path, digest: str) -> Path:
    """Extract ``tar`` into the container's root unless it came from this template
    already (its data kept); return the root. A root without its stamp is one
    whose making was cut short, and is made again. The directory is Corral's by
    where it is, under the site's runs directory, as a project's pool is."""
    stamp = f"{template} {digest}\n"
    if dirs.root.is_dir() and dirs.stamp.is_file() and dirs.stamp.read_text() == stamp:
        return dirs.root
    dirs.stamp.unlink(missing_ok=True)
    making = dirs.base / "root.partial"
    for leftover in (dirs.root, making):
        if leftover.exists():
            shutil.rmtree(leftover)
    dirs.base.mkdir(parents=True, exist_ok=True)
    dirs.base.chmod(0o700)  # a container's files keep their owners: no one else reads them
    making.mkdir()
    command = ["tar", "-x", "-p", "-f", str(tar), "-C", str(making), *_TAR_OPTIONS]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(making, ignore_errors=True)
        raise BackendError(f"cannot extract template {template} into {dirs.root}: "
                           f"{done.stderr.strip() or 'tar failed'}")
    making.rename(dirs.root)
    for part in (dirs.seed, dirs.console):
        part.mkdir(exist_ok=True)
    dirs.stamp.write_text(stamp)
    return dirs.root


def write_seed(dirs: ContainerDirs, documents: dict[str, str]) -> str:
    """Write the NoCloud documents into the container's seed directory (replaced
    whole, so a document the host no longer has is gone); return the directory."""
    dirs.seed.mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        target = dirs.seed / name
        partial = target.with_name(f".{name}.partial")
        partial.write_text(text)
        partial.chmod(0o644)
        partial.replace(target)
    for stale in dirs.seed.iterdir():
        if stale.name not in documents:
            stale.unlink()
    return str(dirs.seed)


def clear_console(dirs: ContainerDirs) -> None:
    """Empty the console log before a start, so it holds that boot only. The
    container can write in that directory, so nothing there is followed: a
    link or other non-file put in place of the log is removed, not written."""
    dirs.console.mkdir(parents=True, exist_ok=True)
    path = dirs.console_log
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.is_symlink() or (path.exists() and not path.is_file()):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    os.close(fd)


def read_console(dirs: ContainerDirs) -> str:
    """What the container's cloud-init printed this boot ('' before it printed)."""
    try:
        fd = os.open(dirs.console_log, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as stream:
        return stream.read().decode("utf-8", errors="replace")


def delete(dirs: ContainerDirs) -> None:
    """Delete the container's directory and, when it was the project's last, the
    project's container directory."""
    if dirs.base.exists():
        shutil.rmtree(dirs.base)
    parent = dirs.base.parent
    if parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()

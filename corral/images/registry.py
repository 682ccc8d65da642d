"""The template registry: immutable, checksummed base images.

A template is a directory ``ROOT/NAME/`` holding its files under fixed names
(``disk.<format>``, ``vmlinuz``, ``initrd.img``, or ``rootfs.tar`` for a
container's root filesystem) and a ``manifest.json`` that records what they
are and the sha256 of each. Files are mode 0444, the
directory 0555 and the root 0755 when Corral creates it, so the QEMU user
reads templates as they are and libvirt never needs to relabel (chown) them;
nothing in Corral ever opens a template for writing: run
copies are qcow2 overlays created elsewhere with the backing format taken from
:attr:`Template.format`, so a template's bytes never change whatever happens to
the hosts. :meth:`TemplateRegistry.verify` proves it.

Adds are atomic: files are gathered in a hidden temporary directory under the
root and renamed into place in one step, so concurrent adds of different names
never see each other's half-written templates, and a crash leaves only a
hidden leftover that :meth:`TemplateRegistry.list` ignores.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from corral.errors import BackendError, ConfigError, ConflictError, NotFoundError
from corral.images import qemuimg

DEFAULT_ROOT = Path("/var/lib/corral/templates")
MANIFEST = "manifest.json"
KERNEL_FILE = "vmlinuz"
INITRD_FILE = "initrd.img"
# A root filesystem as a POSIX tar (GNU tar --numeric-owner --xattrs --acls):
# owners, modes, device nodes and hard links survive in one checksummed file,
# which a container's run copy is extracted from.
ROOTFS_FILE = "rootfs.tar"

_NAME = re.compile(r"[A-Za-z0-9._-]+")
_CHUNK = 1 << 20
_FILE_MODE = 0o444
_DIR_MODE = 0o555
_ROOT_MODE = 0o755


class Template(BaseModel):
    """One registered template, as its manifest describes it.

    ``kind`` is ``"disk"`` for a bootable disk image, ``"direct"`` for a
    kernel (+ optional initrd and root disk) booted directly, and ``"rootfs"``
    for a container's root filesystem, ``rootfs`` (a tar; no disk, no kernel).
    Paths are absolute; ``sha256`` maps each file name in ``directory`` to its
    digest. ``format`` and ``virtual_size`` describe the disk and are None
    without one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: Literal["disk", "direct", "rootfs"]
    directory: Path
    disk: Path | None = None
    rootfs: Path | None = None
    kernel: Path | None = None
    initrd: Path | None = None
    format: str | None = None
    virtual_size: int | None = None
    cmdline: str | None = None
    disk_boots: bool = False  # a direct-boot template whose disk also boots (for hvm)
    # What a built template holds (``corral template build``); None for one added
    # from files, whose contents Corral cannot vouch for.
    os: str | None = None
    release: str | None = None
    packages: tuple[str, ...] = ()
    sha256: dict[str, str]
    added_at: datetime


class TemplateRegistry:
    """Registered templates under one root directory (site config ``templates``).

    The root is created on the first :meth:`add`. The registry holds no state
    besides the directory itself, so several processes may use one root.
    """

    def __init__(self, root: Path = DEFAULT_ROOT, *, qemu_img: str = qemuimg.QEMU_IMG) -> None:
        self.root = Path(root)
        self._qemu_img = qemu_img

    # -- adding -----------------------------------------------------------------

    def add(
        self,
        name: str,
        disk: Path | None,
        *,
        kernel: Path | None = None,
        initrd: Path | None = None,
        cmdline: str | None = None,
        move: bool = False,
        disk_boots: bool = False,
        os_name: str | None = None,
        release: str | None = None,
        packages: Sequence[str] = (),
        rootfs: Path | None = None,
    ) -> Template:
        """Register ``name`` from the given files and return it.

        Files are copied (sparse regions stay sparse), or moved when ``move``
        is true — for an image freshly built for this purpose. Refused: an
        invalid or existing name, a missing or unreadable file, a disk with a
        backing file (a template must stand alone), an initrd without a kernel.
        ``disk_boots`` says that a direct-boot template's disk also boots
        through the firmware (it has a boot loader), which ``hvm`` hosts use.
        ``os_name``, ``release`` and ``packages`` record what a builder put in it.
        ``rootfs`` (a tar of a root tree, alone) makes a container's template.
        """
        _check_name(name)
        _check_roles(name, disk, kernel, initrd, rootfs)
        if disk_boots and (disk is None or kernel is None):
            raise ConflictError(
                f"template {name}: --disk-boots means the disk boots as well as the kernel",
                hint="give both a disk and a kernel, or leave --disk-boots out",
            )
        if initrd is not None and kernel is None:
            raise ConflictError(
                f"template {name}: an initrd needs a kernel",
                hint="add the kernel the initrd belongs to",
            )
        sources = {
            role: Path(path)
            for role, path in (
                ("disk", disk), ("kernel", kernel), ("initrd", initrd), ("rootfs", rootfs)
            )
            if path is not None
        }
        for role, path in sources.items():
            _check_readable(name, role, path)
        if rootfs is not None and not tarfile.is_tarfile(rootfs):
            raise ConflictError(f"template {name}: rootfs {rootfs} is not a tar archive",
                                hint="make it with tar --numeric-owner -C TREE -cf FILE .")
        self.check_free(name)

        disk_info = None
        if "disk" in sources:
            disk_info = qemuimg.info(sources["disk"], binary=self._qemu_img)
            if disk_info.backing_file:
                raise ConflictError(
                    f"template {name}: disk {sources['disk']} has a backing file "
                    f"({disk_info.backing_file})",
                    hint="register a standalone image: qemu-img convert -O qcow2 DISK NEW",
                )

        targets = {
            "kernel": KERNEL_FILE,
            "initrd": INITRD_FILE,
            "rootfs": ROOTFS_FILE,
            "disk": f"disk.{disk_info.format}" if disk_info else "",
        }
        staging = self._staging(f".adding-{name}-")
        brought: list[tuple[Path, Path]] = []
        try:
            digests = {}
            for role, path in sources.items():
                digests[targets[role]] = _bring_in(path, staging / targets[role], move=move)
                brought.append((path, staging / targets[role]))
            manifest = {
                "name": name,
                "kind": _kind(kernel, rootfs),
                "disk": targets["disk"] if disk is not None else None,
                "rootfs": ROOTFS_FILE if rootfs is not None else None,
                "kernel": KERNEL_FILE if kernel is not None else None,
                "initrd": INITRD_FILE if initrd is not None else None,
                "format": disk_info.format if disk_info else None,
                "virtual_size": disk_info.virtual_size if disk_info else None,
                "cmdline": cmdline,
                "disk_boots": disk_boots,
                "os": os_name,
                "release": release,
                "packages": list(packages),
                "sha256": digests,
                "added_at": datetime.now(UTC).isoformat(),
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            for entry in staging.iterdir():
                entry.chmod(_FILE_MODE)
            staging.chmod(_DIR_MODE)
            _publish(staging, self._dir(name), name)
        except BaseException:
            if move:
                _move_back(staging, brought)
            _delete_tree(staging)
            raise
        return self.get(name)

    def check_free(self, name: str) -> None:
        """Refuse a name that is invalid or taken, before anything is made for it."""
        _check_name(name)
        if self._dir(name).exists():
            raise ConflictError(
                f"template {name} already exists",
                hint=f"remove it first with 'corral template remove {name}'",
            )

    # -- reading ----------------------------------------------------------------

    def get(self, name: str) -> Template:
        """The template called ``name``; NotFoundError with a hint if there is none."""
        directory = self._dir(name) if _NAME.fullmatch(name) else None
        if directory is None or not (directory / MANIFEST).is_file():
            known = self.names()
            close = difflib.get_close_matches(name, known, n=1)
            if close:
                hint = f"did you mean '{close[0]}'?"
            elif known:
                hint = f"registered templates: {', '.join(known)}"
            else:
                hint = "no templates are registered; add one with 'corral template add'"
            raise NotFoundError(f"template {name} not found", hint=hint)
        return _load(directory)

    def names(self) -> list[str]:
        """Names of the registered templates, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if not entry.name.startswith(".") and (entry / MANIFEST).is_file()
        )

    def list(self) -> list[Template]:
        """Every registered template, sorted by name."""
        return [_load(self._dir(name)) for name in self.names()]

    def verify(self, name: str) -> None:
        """Recompute every file's sha256 and compare with the manifest.

        Raises BackendError ``template X changed on disk: FILE`` at the first
        file that differs or has gone missing.
        """
        template = self.get(name)
        for file_name, expected in sorted(template.sha256.items()):
            path = template.directory / file_name
            try:
                actual = _sha256(path)
            except OSError as exc:
                raise BackendError(
                    f"template {name} changed on disk: {file_name} ({exc.strerror})"
                ) from exc
            if actual != expected:
                raise BackendError(f"template {name} changed on disk: {file_name}")

    # -- removing ---------------------------------------------------------------

    def remove(self, name: str, in_use_by: Sequence[str] = ()) -> None:
        """Delete template ``name`` unless something uses it.

        ``in_use_by`` names the hosts whose run copies are backed by this
        template; the caller learns them from libvirt, the source of truth.
        The directory is first renamed aside, so a concurrent reader sees
        either the whole template or none of it.
        """
        self.get(name)
        if in_use_by:
            users = ", ".join(sorted(in_use_by))
            raise ConflictError(
                f"template {name} is in use by: {users}",
                hint="remove those hosts first",
            )
        doomed = self._staging(f".removing-{name}-")
        try:
            os.replace(self._dir(name), doomed / name)
        except OSError as exc:
            _delete_tree(doomed)
            raise BackendError(f"cannot remove template {name}: {exc.strerror}") from exc
        _delete_tree(doomed)

    def _dir(self, name: str) -> Path:
        return self.root / name

    def _staging(self, prefix: str) -> Path:
        """A fresh hidden directory under the root (which is created on demand)."""
        try:
            if not self.root.is_dir():
                self.root.mkdir(parents=True, exist_ok=True)
                # QEMU runs as its own user and must reach the templates without
                # libvirt relabelling them; a umask must not lock it out.
                self.root.chmod(_ROOT_MODE)
            return Path(tempfile.mkdtemp(prefix=prefix, dir=self.root))
        except OSError as exc:
            raise ConfigError(
                f"template directory {self.root} is not usable: {exc.strerror}",
                hint="check 'templates' under [paths] in corral.toml",
            ) from exc


# -- helpers --------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name) or name.startswith("."):
        raise ConflictError(
            f"invalid template name {name!r}",
            hint="use letters, digits, '.', '_' and '-', not starting with '.'",
        )


def _check_roles(name: str, disk: Path | None, kernel: Path | None, initrd: Path | None,
                 rootfs: Path | None) -> None:
    """Refuse a set of files that makes no template: a container's root tar is the
    whole template (a container boots no kernel and has no disk), a machine's
    template needs a disk or a kernel."""
    if rootfs is not None and (disk is not None or kernel is not None or initrd is not None):
        raise ConflictError(
            f"template {name}: a rootfs template is a container's root filesystem alone; "
            "it has no disk, kernel or initrd",
            hint="register the rootfs tar and the machine's files as two templates",
        )
    if rootfs is None and disk is None and kernel is None:
        raise ConflictError(
            f"template {name}: give a disk image, a kernel, or both",
        )


def _kind(kernel: Path | None, rootfs: Path | None) -> str:
    if rootfs is not None:
        return "rootfs"
    return "direct" if kernel is not None else "disk"


def _check_readable(name: str, role: str, path: Path) -> None:
    """NotFoundError naming the file when it is missing, not a file, or unreadable
    (a name too long for the file system too: ``exists()`` raises on that)."""
    try:
        if not path.exists():
            raise NotFoundError(f"template {name}: {role} file not found: {path}")
        if not path.is_file():
            raise NotFoundError(f"template {name}: {role} is not a regular file: {path}")
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise NotFoundError(
            f"template {name}: cannot read {role} file {path}: {exc.strerror}"
        ) from exc


def _bring_in(source: Path, target: Path, *, move: bool) -> str:
    """Copy (or move) ``source`` to ``target``; return its sha256."""
    if move:
        shutil.move(source, target)
        return _sha256(target)
    return _sparse_copy(source, target)


def _move_back(staging: Path, brought: list[tuple[Path, Path]]) -> None:
    """Undo the moves of a failed add, so a freshly built image is never lost."""
    staging.chmod(stat.S_IRWXU)
    for source, target in brought:
        if target.exists() and not source.exists():
            shutil.move(target, source)


def _sparse_copy(source: Path, target: Path) -> str:
    """Copy a file block by block, seeking over zero blocks; return the sha256.

    Disk images are mostly holes: a plain copy would turn a sparse 10 GiB
    raw image into 10 GiB on disk. Hashing in the same pass reads it once.
    """
    digest = hashlib.sha256()
    with source.open("rb") as src, target.open("wb") as dst:
        while block := src.read(_CHUNK):
            digest.update(block)
            if block.count(0) == len(block):
                dst.seek(len(block), os.SEEK_CUR)
            else:
                dst.write(block)
        dst.truncate()
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _publish(staging: Path, final: Path, name: str) -> None:
    """Rename the finished staging directory to its name, atomically.

    rename(2) refuses a non-empty target, so of two racing adds of one name
    exactly one wins and the other gets a ConflictError.
    """
    try:
        os.rename(staging, final)
    except OSError as exc:
        if final.exists():
            raise ConflictError(f"template {name} already exists") from exc
        raise BackendError(f"cannot register template {name}: {exc.strerror}") from exc


def _load(directory: Path) -> Template:
    """Read ``directory/manifest.json`` into a Template with absolute paths."""
    manifest_path = directory / MANIFEST
    try:
        data = json.loads(manifest_path.read_text())
        return Template(
            name=data["name"],
            kind=data["kind"],
            directory=directory,
            disk=directory / data["disk"] if data.get("disk") else None,
            rootfs=directory / data["rootfs"] if data.get("rootfs") else None,
            kernel=directory / data["kernel"] if data.get("kernel") else None,
            initrd=directory / data["initrd"] if data.get("initrd") else None,
            format=data.get("format"),
            virtual_size=data.get("virtual_size"),
            cmdline=data.get("cmdline"),
            disk_boots=bool(data.get("disk_boots", False)),
            os=data.get("os"),
            release=data.get("release"),
            packages=tuple(data.get("packages") or ()),
            sha256=data["sha256"],
            added_at=datetime.fromisoformat(data["added_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"template manifest {manifest_path} is unreadable: {exc}") from exc


def _delete_tree(path: Path) -> None:
    """Delete a directory tree whose directories were made read-only on purpose."""
    if not path.exists():
        return
    for directory, _subdirs, _files in os.walk(path):
        os.chmod(directory, stat.S_IRWXU)
    shutil.rmtree(path)

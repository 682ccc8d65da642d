"""Build the ``tiny`` template from Debian packages only.

The template is what Corral boots when a lab needs many small, real Linux
guests quickly: Debian's own kernel (direct boot), an initramfs that loads the
virtio/ext4/isofs modules that kernel builds as modules and switches to the
root disk, and an ext4 root disk holding busybox-static and the Corral guest
init (``corral/images/tiny/boot``), which individualises the guest from its
NoCloud seed and prints ``corral-ready HOSTNAME`` on the serial console.

Nothing is mounted and nothing needs a loop device: the initramfs is a newc
cpio archive written here, the root filesystem is made by ``mke2fs -d`` from a
staging directory, and ``qemu-img convert`` turns it into qcow2. The kernel and
its modules come from the cache ``scripts/fetch-kernel.sh`` fills.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import shutil
import struct
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from corral.errors import BackendError, NotFoundError
from corral.images import qemuimg

DEFAULT_KERNEL_CACHE = Path("/var/cache/corral/kernel")
BUSYBOX = Path("/bin/busybox")
# no_timer_check: under TCG on a loaded host the kernel may misjudge the
# IO-APIC timer and panic ("IO-APIC + timer doesn't work!").
CMDLINE = "console=ttyS0 root=/dev/vda rw quiet panic=-1 no_timer_check"
DISK_SIZE = "96M"

# What the guest needs; dependencies (virtio_pci_*_dev, failover, cdrom, ...)
# are added from the modules' own metadata. crc32c_generic is ext4's and
# jbd2's soft dependency ("crypto-crc32c"): metadata checksums need it at
# mount time, and TCG's default CPU lacks the SSE4.2 that crc32c-intel uses.
# af_packet (for udhcpc) is built into Debian's kernel, so it is only loaded
# when a kernel builds it as a module. button and evdev let busybox acpid see
# the ACPI power button, so a libvirt "shutdown" powers the guest off cleanly.
WANTED_MODULES = (
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_balloon",
    "crc32c_generic",
    "ext4",
    "isofs",
    "button",
    "evdev",
)
OPTIONAL_MODULES = ("af_packet",)

_GUEST_FILES = ("boot", "console", "flatyaml.awk", "udhcpc.script")


@dataclass(frozen=True, slots=True)
class TinyImage:
    """A built tiny template: ``kernel`` + ``initrd`` booted with ``cmdline``, root ``disk``."""

    kernel: Path
    initrd: Path
    disk: Path
    cmdline: str


@dataclass(frozen=True, slots=True)
class KernelTree:
    """An unpacked Debian kernel package: its image and its module directory."""

    vmlinuz: Path
    modules: Path  # root/lib/modules/RELEASE

    @property
    def release(self) -> str:
        return self.modules.name


def build_tiny(workdir: Path, kernel_cache: Path = DEFAULT_KERNEL_CACHE) -> TinyImage:
    """Build the tiny template into ``workdir`` (created if missing) and describe it.

    Writes ``workdir/vmlinuz``, ``workdir/initrd.img`` and ``workdir/disk.qcow2``;
    a scratch directory ``workdir/build`` is removed afterwards.
    """
    kernel = kernel_tree(kernel_cache)
    busybox = static_busybox()
    workdir.mkdir(parents=True, exist_ok=True)
    scratch = workdir / "build"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        modules = resolve_modules(kernel.modules, WANTED_MODULES, OPTIONAL_MODULES)
        image = TinyImage(
            kernel=workdir / "vmlinuz",
            initrd=workdir / "initrd.img",
            disk=workdir / "disk.qcow2",
            cmdline=CMDLINE,
        )
        shutil.copyfile(kernel.vmlinuz, image.kernel)
        image.initrd.write_bytes(initramfs(busybox, modules))
        raw = scratch / "root.ext4"
        make_root_filesystem(stage_root(scratch / "root", busybox), raw)
        qemuimg.convert(raw, image.disk, "qcow2", src_format="raw")
        return image
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def tiny_fingerprint(kernel_cache: Path = DEFAULT_KERNEL_CACHE) -> str:
    """A digest of every input of :func:`build_tiny`, to key caches of built images."""
    kernel = kernel_tree(kernel_cache)
    digest = hashlib.sha256()
    digest.update(kernel.release.encode())
    for path in (kernel.vmlinuz, static_busybox(), Path(__file__)):
        digest.update(path.read_bytes())
    for name in (*_GUEST_FILES, "initramfs-init", "inittab"):
        digest.update(_guest_file(name))
    digest.update(" ".join((*WANTED_MODULES, *OPTIONAL_MODULES, CMDLINE, DISK_SIZE)).encode())
    return digest.hexdigest()[:16]


def kernel_tree(cache: Path) -> KernelTree:
    """The kernel in ``cache``, fetching it with ``scripts/fetch-kernel.sh`` if missing."""
    if not (cache / "ready").exists():
        _fetch_kernel(cache)
    try:
        release = (cache / "kernel-release").read_text().strip()
    except OSError as exc:
        raise NotFoundError(f"no kernel in {cache}: {exc.strerror}") from exc
    tree = KernelTree(vmlinuz=cache / "vmlinuz", modules=cache / "root/lib/modules" / release)
    if not tree.vmlinuz.exists() or not tree.modules.is_dir():
        raise NotFoundError(
            f"kernel cache {cache} is incomplete",
            hint=f"remove {cache}/ready and run scripts/fetch-kernel.sh",
        )
    return tree


def _fetch_kernel(cache: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "fetch-kernel.sh"
    if not script.exists():
        raise NotFoundError(
            f"no Debian kernel unpacked in {cache}",
            hint="run scripts/fetch-kernel.sh (part of `make setup`)",
        )
    done = subprocess.run(
        ["sh", str(script)],
        env={**os.environ, "CORRAL_KERNEL_CACHE": str(cache)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackendError(f"fetching the Debian kernel failed: {done.stderr.strip()}")


def static_busybox(path: Path = BUSYBOX) -> Path:
    """``path`` if it is a statically linked busybox (a dynamic one cannot run in the guest)."""
    try:
        elf = path.read_bytes()
    except OSError as exc:
        raise NotFoundError(
            f"no busybox at {path}", hint="install the busybox-static package"
        ) from exc
    if _has_interpreter(elf):
        raise NotFoundError(
            f"{path} is dynamically linked", hint="install busybox-static instead of busybox"
        )
    return path


def _has_interpreter(elf: bytes) -> bool:
    """True when an ELF64 file asks for a dynamic loader (has a PT_INTERP header)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        raise BackendError("busybox is not a 64-bit ELF executable")
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    pt_interp = 3
    return any(
        struct.unpack_from("<I", elf, phoff + i * phentsize)[0] == pt_interp for i in range(phnum)
    )


# --- kernel modules -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KernelModule:
    """One module file, its plain (decompressed) bytes, and what it depends on."""

    name: str
    data: bytes
    depends: tuple[str, ...]


def resolve_modules(
    module_dir: Path, wanted: Iterable[str], optional: Iterable[str] = ()
) -> list[KernelModule]:
    """``wanted`` (and present ``optional``) modules plus dependencies, in load order.

    Dependencies come from each module's ``.modinfo`` ``depends=`` (Debian's
    package ships no ``modules.dep``: depmod makes it at install time).
    A wanted module the kernel has built in is skipped; one that is neither
    built in nor present is an error.
    """
    files = _module_files(module_dir)
    builtin = _builtin_modules(module_dir)
    roots = [name for name in wanted if name not in builtin]
    missing = [name for name in roots if name not in files]
    if missing:
        raise NotFoundError(f"kernel {module_dir.name} has no module {', '.join(missing)}")
    roots += [name for name in optional if name in files]
    ordered: list[KernelModule] = []
    seen: set[str] = set()
    for name in roots:
        _visit(name, files, seen, ordered, chain=())
    return ordered


def _visit(
    name: str,
    files: dict[str, Path],
    seen: set[str],
    ordered: list[KernelModule],
    chain: tuple[str, ...],
) -> None:
    """Depth-first: append ``name`` after everything it depends on."""
    if name in seen:
        return
    if name in chain:
        raise BackendError(f"kernel modules depend on each other in a cycle: {' -> '.join(chain)}")
    if name not in files:
        raise NotFoundError(f"kernel module {name} (needed by {chain[-1]}) is missing")
    module = _load_module(name, files[name])
    for dependency in module.depends:
        _visit(dependency, files, seen, ordered, (*chain, name))
    seen.add(name)
    ordered.append(module)


def _module_name(path: Path) -> str:
    return path.name.split(".ko")[0].replace("-", "_")


def _module_files(module_dir: Path) -> dict[str, Path]:
    return {
        _module_name(path): path
        for pattern in ("*.ko", "*.ko.xz")
        for path in (module_dir / "kernel").rglob(pattern)
    }


def _builtin_modules(module_dir: Path) -> set[str]:
    try:
        lines = (module_dir / "modules.builtin").read_text().split()
    except OSError:
        return set()
    return {_module_name(Path(line)) for line in lines}


def _load_module(name: str, path: Path) -> KernelModule:
    data = path.read_bytes()
    if path.suffix == ".xz":
        # busybox insmod cannot read compressed modules: store them plain.
        data = lzma.decompress(data)
    return KernelModule(name=name, data=data, depends=_modinfo_depends(data))


def _modinfo_depends(elf: bytes) -> tuple[str, ...]:
    """The ``depends=`` field of an ELF64 module's ``.modinfo`` section."""
    for field in _section(elf, b".modinfo").split(b"\0"):
        if field.startswith(b"depends="):
            value = field[len(b"depends=") :].decode()
            return tuple(dep.replace("-", "_") for dep in value.split(",") if dep)
    return ()


def _section(elf: bytes, wanted: bytes) -> bytes:
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def header(index: int) -> tuple[int, int, int]:
        base = shoff + index * shentsize
        (name,) = struct.unpack_from("<I", elf, base)
        offset, size = struct.unpack_from("<QQ", elf, base + 0x18)
        return name, offset, size

    _, names_offset, _ = header(shstrndx)
    for index in range(shnum):
        name, offset, size = header(index)
        end = elf.index(b"\0", names_offset + name)
        if elf[names_offset + name : end] == wanted:
            return elf[offset : offset + size]
    return b""


# --- initramfs ------------------------------------------------------------


def initramfs(busybox: Path, modules: list[KernelModule]) -> bytes:
    """A gzip'd newc cpio: busybox, the modules with their load order, and /init."""
    archive = CpioWriter()
    for directory in ("bin", "dev", "lib", "lib/modules", "proc", "sys", "newroot"):
        archive.directory(directory)
    # The kernel opens /dev/console for /init before devtmpfs is mounted.
    archive.char_device("dev/console", major=5, minor=1)
    archive.file("bin/busybox", busybox.read_bytes(), mode=0o755)
    archive.symlink("bin/sh", "busybox")
    for module in modules:
        archive.file(f"lib/modules/{module.name}.ko", module.data)
    order = "".join(f"{module.name}.ko\n" for module in modules)
    archive.file("lib/modules/load-order", order.encode())
    archive.file("init", _guest_file("initramfs-init"), mode=0o755)
    return gzip.compress(archive.finish(), compresslevel=6, mtime=0)


class CpioWriter:
    """Writes a cpio archive in the kernel's "newc" format, entries in call order.

    Written here rather than with ``cpio`` so the archive can hold a device
    node without root privileges and is byte-for-byte reproducible (every
    timestamp is 0).
    """

    _S_IFDIR, _S_IFREG, _S_IFLNK, _S_IFCHR = 0o040000, 0o100000, 0o120000, 0o020000

    def __init__(self) -> None:
        self._out = io.BytesIO()
        self._inode = 0

    def directory(self, path: str, mode: int = 0o755) -> None:
        self._entry(path, self._S_IFDIR | mode, b"", nlink=2)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(path, self._S_IFREG | mode, data)

    def symlink(self, path: str, target: str) -> None:
        self._entry(path, self._S_IFLNK | 0o777, target.encode())

    def char_device(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(path, self._S_IFCHR | mode, b"", rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, b"", nlink=1)
        return self._out.getvalue()

    def _entry(
        self, path: str, mode: int, data: bytes, nlink: int = 1, rdev: tuple[int, int] = (0, 0)
    ) -> None:
        self._inode += 1
        name = path.encode() + b"\0"
        fields = (self._inode, mode, 0, 0, nlink, 0, len(data), 0, 0, *rdev, len(name), 0)
        header = b"070701" + b"".join(b"%08X" % value for value in fields)
        self._write_padded(header + name)
        self._write_padded(data)

    def _write_padded(self, chunk: bytes) -> None:
        self._out.write(chunk)
        self._out.write(b"\0" * (-self._out.tell() % 4))


# --- root filesystem ------------------------------------------------------


def stage_root(root: Path, busybox: Path) -> Path:
    """Lay out the root filesystem's tree in ``root`` (busybox, applet links, /etc, guest init)."""
    for directory in (
        "bin", "sbin", "usr/bin", "usr/sbin", "usr/lib/corral", "etc", "proc", "sys",
        "dev", "run", "tmp", "root", "home", "var/lib/corral", "var/log", "mnt",
    ):  # fmt: skip
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "root").chmod(0o700)
    _write_acpi_handler(root / "etc/acpi")
    shutil.copyfile(busybox, root / "bin/busybox")
    (root / "bin/busybox").chmod(0o755)
    for applet in _applet_paths(busybox):
        link = root / applet
        if not link.exists() and not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    for name in _GUEST_FILES:
        target = root / "usr/lib/corral" / name
        target.write_bytes(_guest_file(name))
        target.chmod(0o644 if name.endswith(".awk") else 0o755)
    _write_etc(root / "etc")
    return root


def _applet_paths(busybox: Path) -> list[str]:
    done = subprocess.run(
        [str(busybox), "--list-full"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BackendError(f"{busybox} --list-full failed: {done.stderr.strip()}")
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def _write_etc(etc: Path) -> None:
    files = {
        "inittab": (_guest_file("inittab").decode(), 0o644),
        "passwd": ("root:x:0:0:root:/root:/bin/sh\n", 0o644),
        "group": ("root:x:0:\n", 0o644),
        "shadow": ("root:*:19000:0:99999:7:::\n", 0o640),
        "hostname": ("tiny\n", 0o644),
        "hosts": ("127.0.0.1\tlocalhost\n", 0o644),
        "resolv.conf": ("", 0o644),
        "shells": ("/bin/sh\n/bin/ash\n", 0o644),
        "profile": (
            "export PATH=/sbin:/bin:/usr/sbin:/usr/bin\nexport PS1='\\u@\\h:\\w\\$ '\n",
            0o644,
        ),
        "fstab": ("/dev/vda / ext4 rw 0 1\n", 0o644),
    }
    for name, (text, mode) in files.items():
        (etc / name).write_text(text)
        (etc / name).chmod(mode)


def _write_acpi_handler(confdir: Path) -> None:
    """busybox acpid runs ``CONFDIR/<ACTION>/<PARAMETER>``; PWRF/00000080 is the power button."""
    handler = confdir / "PWRF" / "00000080"
    handler.parent.mkdir(parents=True, exist_ok=True)
    handler.write_text("#!/bin/sh\nexec /sbin/poweroff\n")
    handler.chmod(0o755)


def make_root_filesystem(tree: Path, image: Path, size: str = DISK_SIZE,
                         label: str = "tiny-root") -> None:
    """``mke2fs -t ext4 -d tree``: an ext4 image of ``tree`` without mounting anything."""
    command = [
        "mke2fs", "-q", "-F", "-t", "ext4", "-L", label,
        "-E", "root_owner=0:0", "-d", str(tree), str(image), size,
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise NotFoundError("mke2fs is not installed", hint="install e2fsprogs") from exc
    if done.returncode != 0:
        raise BackendError(f"mke2fs failed: {done.stderr.strip() or done.returncode}")


def _guest_file(name: str) -> bytes:
    return (Path(__file__).parent / "tiny" / name).read_bytes()

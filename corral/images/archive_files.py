"""The local file work of archives: copying with checksums, flattening overlays,
packing an archive directory into one ``.tar.gz`` and unpacking it again.

Nothing here touches libvirt: volumes arrive as local files (downloaded by the
operation through the backend) and leave as local files (uploaded the same way).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from pathlib import Path

from corral.errors import BackendError, ConflictError
from corral.images import qemuimg
from corral.images.archive_manifest import CHUNK

COMPRESS_LEVEL = 1  # gzip's fastest level: qcow2 clusters are already sparse


def copy_checked(source: Path, target: Path, expected: str, what: str) -> str:
    """Copy ``source`` to ``target`` hashing on the way; a sha256 other than
    ``expected`` (the registry's record of ``what``) is refused and the copy deleted."""
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as reader, target.open("wb") as writer:
        for chunk in iter(lambda: reader.read(CHUNK), b""):
            digest.update(chunk)
            writer.write(chunk)
    found = digest.hexdigest()
    if found != expected:
        target.unlink(missing_ok=True)
        raise ConflictError(f"{what} changed on disk: {source} has sha256 {found}, "
                            f"the registry recorded {expected}")
    return found


def flatten(overlay: Path, base: Path, base_format: str, target: Path) -> None:
    """Write the standalone qcow2 ``target`` holding what the guest sees through
    ``overlay`` on ``base`` (this machine's copy of its template). The overlay's
    header is pointed at ``base`` first (it names the file on the service host)."""
    qemuimg.rebase_unsafe(overlay, str(base), base_format)
    qemuimg.convert(overlay, target, "qcow2", src_format="qcow2")
    if qemuimg.info(target).backing_file is not None:
        raise BackendError(f"qemu-img convert left {target} with a backing file")


def pack(directory: Path, target: Path) -> None:
    """``directory``'s tree as the gzip-compressed tar ``target`` (written beside it
    under a hidden name, then renamed: a crash never leaves a half archive)."""
    partial = target.with_name(f".{target.name}.partial")
    with tarfile.open(partial, "w:gz", compresslevel=COMPRESS_LEVEL) as tar:
        tar.add(directory, arcname=target.name.removesuffix(".tar.gz"))
    os.replace(partial, target)


def unpack(archive: Path, into: Path) -> Path:
    """Unpack ``archive`` into ``into``; the directory it holds. Members that would
    land outside ``into`` (absolute paths, ``..``, links) are refused by tarfile's
    ``data`` filter."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tops = {Path(m.name).parts[0] for m in tar.getmembers() if m.name}
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise ConflictError(f"archive {archive} cannot be unpacked: {error}") from None
    if len(tops) != 1:
        raise ConflictError(f"archive {archive} must hold one directory, not {sorted(tops)}")
    return into / tops.pop()


def remove_tree(path: Path) -> None:
    """Delete a directory this process made (a staging area, an unpacked archive)."""
    shutil.rmtree(path, ignore_errors=True)

"""Thin typed wrappers over the ``qemu-img`` binary.

Corral asks the real ``qemu-img`` about disk images instead of parsing image
headers itself: it knows every format QEMU can boot, and its JSON output is a
stable interface. Every call passes an argument list (never a shell string),
and every failure becomes a :class:`~corral.errors.BackendError` carrying
qemu-img's own message, which is usually the most precise explanation there is.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from corral.errors import BackendError

QEMU_IMG = "qemu-img"


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What ``qemu-img info`` reports about one image.

    ``virtual_size`` is the size the guest sees, ``actual_size`` the bytes the
    file occupies on the host; ``backing_file`` is set for overlays.
    """

    format: str
    virtual_size: int
    actual_size: int
    backing_file: str | None


def _run(args: list[str], *, binary: str) -> str:
    """Run ``binary args...``; return stdout or raise BackendError with stderr."""
    command = [binary, *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise BackendError(
            f"cannot run {binary}: not installed",
            hint="install the qemu-utils package",
        ) from exc
    if done.returncode != 0:
        message = done.stderr.strip() or f"exit status {done.returncode}"
        raise BackendError(f"{binary} {args[0]} failed: {message}")
    return done.stdout


def info(path: Path, *, binary: str = QEMU_IMG) -> ImageInfo:
    """Describe the image at ``path``.

    ``-U`` (force-share) lets this read an image that a running guest holds
    open; Corral only reads metadata here, so sharing is safe.
    """
    out = _run(["info", "-U", "--output=json", str(path)], binary=binary)
    try:
        data = json.loads(out)
        return ImageInfo(
            format=str(data["format"]),
            virtual_size=int(data["virtual-size"]),
            actual_size=int(data.get("actual-size", 0)),
            backing_file=data.get("full-backing-filename") or data.get("backing-filename"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"{binary} info {path}: unexpected output: {out[:200]!r}") from exc


def create_overlay(
    base: Path,
    base_format: str,
    overlay: Path,
    size_bytes: int | None = None,
    *,
    binary: str = QEMU_IMG,
) -> ImageInfo:
    """Create a qcow2 copy-on-write ``overlay`` backed by ``base``.

    The backing format is always given (``-F``): letting QEMU probe it is a
    known security hole and fails for raw bases. ``base`` is only ever read.
    ``size_bytes`` grows the overlay beyond the base's virtual size.
    """
    args = ["create", "-q", "-f", "qcow2", "-b", str(base), "-F", base_format, str(overlay)]
    if size_bytes is not None:
        args.append(str(size_bytes))
    _run(args, binary=binary)
    return info(overlay, binary=binary)


def convert(
    src: Path,
    dst: Path,
    fmt: str,
    *,
    src_format: str | None = None,
    binary: str = QEMU_IMG,
) -> ImageInfo:
    """Write a standalone copy of ``src`` in format ``fmt`` to ``dst``.

    Give ``src_format`` when it is known (probing a raw image is unreliable);
    otherwise qemu-img detects it. The result has no backing file.
    """
    args = ["convert", "-q"]
    if src_format is not None:
        args += ["-f", src_format]
    _run([*args, "-O", fmt, str(src), str(dst)], binary=binary)
    return info(dst, binary=binary)


def rebase_unsafe(
    image: Path, backing: str, backing_format: str, *, binary: str = QEMU_IMG
) -> None:
    """Make the qcow2 ``image`` name ``backing`` as its backing file, changing only
    its header (``rebase -u``): for an overlay whose template is the same bytes
    at another path (an imported run copy, on the service host it now lives on)."""
    _run(["rebase", "-u", "-F", backing_format, "-b", backing, str(image)], binary=binary)

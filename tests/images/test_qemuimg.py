"""qemu-img wrappers against the real qemu-img on small real images."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest

from corral.errors import BackendError
from corral.images import qemuimg

MIB = 1 << 20


def make_image(path: Path, fmt: str, size: str = "4M") -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), size], check=True)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["raw", "qcow2", "vmdk"])
def test_info_detects_format_and_size(tmp_path: Path, fmt: str) -> None:
    image = make_image(tmp_path / f"disk.{fmt}", fmt)
    found = qemuimg.info(image)
    assert found.format == fmt
    assert found.virtual_size == 4 * MIB
    assert found.backing_file is None
    assert found.actual_size >= 0


def test_overlay_records_backing_and_leaves_base_unchanged(tmp_path: Path) -> None:
    base = make_image(tmp_path / "base.qcow2", "qcow2")
    before = sha256(base)
    overlay = tmp_path / "run.qcow2"
    made = qemuimg.create_overlay(base, "qcow2", overlay, size_bytes=16 * MIB)
    assert made.format == "qcow2"
    assert made.virtual_size == 16 * MIB
    assert made.backing_file == str(base)
    assert qemuimg.info(overlay) == made
    assert sha256(base) == before


def test_overlay_on_raw_base_keeps_base_size(tmp_path: Path) -> None:
    base = make_image(tmp_path / "base.raw", "raw", "2M")
    made = qemuimg.create_overlay(base, "raw", tmp_path / "run.qcow2")
    assert made.virtual_size == 2 * MIB
    assert made.backing_file == str(base)


def test_info_works_while_a_writer_holds_the_image(tmp_path: Path) -> None:
    image = make_image(tmp_path / "busy.qcow2", "qcow2")
    # qemu-io keeps the image open with a write lock until its stdin closes.
    holder = subprocess.Popen(
        ["qemu-io", "-f", "qcow2", str(image)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        # Its prompt comes once the image is open; probing the lock before
        # that could make qemu-io itself lose the race for the lock.
        assert holder.stdout is not None
        assert holder.stdout.read(len(b"qemu-io> ")) == b"qemu-io> "
        _wait_until_locked(image)
        assert qemuimg.info(image).format == "qcow2"
    finally:
        holder.communicate(b"quit\n", timeout=10)


def _wait_until_locked(image: Path) -> None:
    """Block until a plain (non-sharing) qemu-img info is refused by the lock."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        plain = subprocess.run(["qemu-img", "info", str(image)], capture_output=True, text=True)
        if plain.returncode != 0 and "lock" in plain.stderr:
            return
        time.sleep(0.05)
    pytest.fail("qemu-io never locked the image")


def test_convert_makes_standalone_image(tmp_path: Path) -> None:
    base = make_image(tmp_path / "base.raw", "raw")
    overlay = tmp_path / "run.qcow2"
    qemuimg.create_overlay(base, "raw", overlay)
    flat = qemuimg.convert(overlay, tmp_path / "flat.vmdk", "vmdk", src_format="qcow2")
    assert flat.format == "vmdk"
    assert flat.backing_file is None
    assert flat.virtual_size == 4 * MIB


def test_info_of_missing_file_reports_qemu_img_text(tmp_path: Path) -> None:
    with pytest.raises(BackendError) as caught:
        qemuimg.info(tmp_path / "nope.qcow2")
    assert "qemu-img info failed" in caught.value.message
    assert "nope.qcow2" in caught.value.message
    assert "No such file or directory" in caught.value.message


def test_overlay_with_wrong_backing_format_is_refused(tmp_path: Path) -> None:
    base = make_image(tmp_path / "base.raw", "raw")
    with pytest.raises(BackendError) as caught:
        qemuimg.create_overlay(base, "nosuchformat", tmp_path / "run.qcow2")
    assert "qemu-img create failed" in caught.value.message
    assert "nosuchformat" in caught.value.message


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError) as caught:
        qemuimg.info(tmp_path / "x", binary="qemu-img-not-installed")
    assert caught.value.message == "cannot run qemu-img-not-installed: not installed"
    assert caught.value.hint == "install the qemu-utils package"

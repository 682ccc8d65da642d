"""Fixtures for tests that boot the tiny template directly with QEMU.

The template is built once and cached under /var/cache/corral/test-tiny,
keyed by :func:`tiny_fingerprint` (every input of the builder), so reruns
start in milliseconds and any change to the builder or the guest init causes
a rebuild. Each boot gets its own qcow2 overlay: the built disk is never
written to.

(tests/images has no conftest.py of its own, so test modules import this one
and wrap :func:`tiny_or_skip` in a session fixture.)
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from corral.images.tiny_builder import TinyImage, build_tiny, tiny_fingerprint

CACHE = Path("/var/cache/corral/test-tiny")


def cached_tiny(cache: Path = CACHE) -> TinyImage:
    """The tiny template for the current builder inputs, built on first use."""
    target = cache / tiny_fingerprint()
    if not (target / "complete").exists():
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache, prefix=".build-"))
        staging.chmod(0o755)  # mkdtemp makes it 0700; libvirt's QEMU user must read it
        built = build_tiny(staging)
        (staging / "cmdline").write_text(built.cmdline)
        (staging / "complete").touch()
        try:
            staging.rename(target)
        except OSError:  # built concurrently by another run: keep theirs
            shutil.rmtree(staging, ignore_errors=True)
    return TinyImage(
        kernel=target / "vmlinuz",
        initrd=target / "initrd.img",
        disk=target / "disk.qcow2",
        cmdline=(target / "cmdline").read_text(),
    )


def tiny_or_skip() -> TinyImage:
    """For a session fixture: the cached template, or a skip when QEMU is missing."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    return cached_tiny()


class QemuGuest:
    """One tiny guest under QEMU/TCG: serial console on stdio, captured to a file.

    ``nics`` are ``(mac, netdev)`` pairs; ``netdev`` is a QEMU ``-netdev``
    backend (for example ``"user"``). Use as a context manager; the process is
    killed on exit.
    """

    def __init__(
        self,
        image: TinyImage,
        workdir: Path,
        seed: bytes,
        nics: tuple[tuple[str, str], ...] = (),
        overlay: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.console = workdir / f"console-{time.monotonic_ns()}.log"
        self.overlay = overlay or workdir / "root.qcow2"
        if not self.overlay.exists():
            subprocess.run(
                ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(image.disk),
                 str(self.overlay)],
                check=True,
            )  # fmt: skip
        seed_path = workdir / "seed.iso"
        seed_path.write_bytes(seed)
        self.monitor = workdir / f"monitor-{time.monotonic_ns()}.sock"
        command = [
            "qemu-system-x86_64", "-accel", "tcg", "-m", "128", "-smp", "1",
            "-display", "none", "-serial", "stdio", "-no-reboot",
            "-monitor", f"unix:{self.monitor},server=on,wait=off",
            "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", image.cmdline,
            "-drive", f"file={self.overlay},if=virtio,format=qcow2",
            "-drive", f"file={seed_path},if=virtio,format=raw,readonly=on",
        ]  # fmt: skip
        if not nics:
            command += ["-nic", "none"]
        for index, (mac, netdev) in enumerate(nics):
            command += [
                "-netdev", f"{netdev},id=n{index}",
                "-device", f"virtio-net-pci,netdev=n{index},mac={mac}",
            ]  # fmt: skip
        self._log = self.console.open("wb")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT
        )

    def __enter__(self) -> QemuGuest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._log.close()

    def output(self) -> str:
        return self.console.read_bytes().decode("utf-8", errors="replace").replace("\r", "")

    def wait_for(self, pattern: str, timeout: float = 90.0, after: int = 0) -> re.Match[str]:
        """Wait until ``pattern`` appears in the console output (from offset ``after``)."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern, re.MULTILINE)
        while True:
            match = regex.search(self.output(), after)
            if match:
                return match
            if self.process.poll() is not None:
                pytest.fail(f"QEMU exited before {pattern!r}; console:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {pattern!r} within {timeout}s; console:\n{self.output()}")
            time.sleep(0.1)

    def power_button(self) -> None:
        """Press the ACPI power button (what libvirt's ``shutdown`` does)."""
        with socket.socket(socket.AF_UNIX) as monitor:
            monitor.connect(str(self.monitor))
            monitor.sendall(b"system_powerdown\n")
            time.sleep(0.2)

    def shut_down(self, timeout: float = 60.0) -> int:
        """Press the power button until QEMU exits (a press before acpid runs is lost)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.power_button()
            try:
                return self.process.wait(3.0)
            except subprocess.TimeoutExpired:
                continue
        pytest.fail(f"QEMU still running after {timeout}s; console:\n{self.output()}")

    def type(self, text: str) -> None:
        """Send keystrokes to the serial console."""
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode())
        self.process.stdin.flush()

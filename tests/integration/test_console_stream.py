"""The console stream the server's websocket console relays, on the real libvirtd.

A transient domain with no disk, started paused with SeaBIOS writing to its
serial port, is attached to and then resumed: the firmware's lines come
through :class:`~corral.backends.libvirt.console.LibvirtConsole`, bytes can
be typed, and closing it ends a read that waits on another thread (what the
server does when the websocket's client leaves).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import threading
import time
from collections.abc import Iterator

import pytest

from corral.backends.libvirt.console import LibvirtConsole, open_stream

from .support import URI

pytestmark = pytest.mark.libvirt

DOMAIN = """
<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><bios useserial='yes'/><boot dev='hd'/></os>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
  </devices>
</domain>
"""


@pytest.fixture
def paused() -> Iterator[tuple[object, object]]:
    """A connection and a transient, paused domain that only runs its firmware."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    import libvirt

    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as error:
        pytest.skip(f"libvirtd does not answer at {URI}: {error}")
    domain = conn.createXML(DOMAIN.format(name=f"corral-it-console-{secrets.token_hex(4)}"),
                            libvirt.VIR_DOMAIN_START_PAUSED)
    try:
        yield conn, domain
    finally:
        with contextlib.suppress(libvirt.libvirtError):  # gone already
            domain.destroy()
        conn.close()


def test_the_console_stream_carries_the_guest_output_and_ends_when_closed(
        paused: tuple[object, object]) -> None:
    conn, domain = paused
    console: LibvirtConsole = open_stream(conn, domain)  # type: ignore[arg-type]
    seen = bytearray()
    ended = threading.Event()

    def read() -> None:
        while data := console.read():
            seen.extend(data)
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    domain.resume()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 120
    while b"SeaBIOS" not in seen and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b"SeaBIOS" in seen, bytes(seen)
    console.write(b"\r")  # typing reaches the guest's serial port without error
    time.sleep(1)  # the firmware is still printing or waiting: a read is pending
    console.close()
    assert ended.wait(15), "closing the console did not end the waiting read"
    assert console.read() == b""

"""Running shell commands inside a tiny guest over its serial console.

The tiny guest keeps a root shell on ttyS0 when root has no password. This
talks to it through libvirt's own console stream (``virDomain.openConsole``),
the same channel ``virsh console`` uses, so no terminal is needed and nothing
about the guest is assumed beyond its shell.

The stream is blocking (a non-blocking stream needs a libvirt event loop);
one reader thread collects what the console prints. Each command is framed by
two markers written as shell arithmetic (``$((0+1))``), so the echo of the
typed line never matches and only the command's real output lies between them.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import threading
import time

import libvirt

URI = "qemu:///system"


class GuestConsole:
    """An open console on one domain; use as a context manager."""

    def __init__(self, domain: str, uri: str = URI) -> None:
        self.domain = domain
        self._conn = libvirt.open(uri)
        self._stream = self._conn.newStream(0)
        self._conn.lookupByName(domain).openConsole(
            None, self._stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE
        )
        self._output = bytearray()
        self._lock = threading.Lock()
        self._closing = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closing:
            try:
                data = self._stream.recv(4096)
            except libvirt.libvirtError:
                return
            if not isinstance(data, bytes) or not data:
                return
            with self._lock:
                self._output.extend(data)

    def text(self) -> str:
        with self._lock:
            return self._output.decode("utf-8", errors="replace").replace("\r", "")

    def run(self, command: str, timeout: float = 30.0) -> str:
        """Run ``command`` in the guest's shell; its output (stdout and stderr).

        The line is typed again every few seconds until its end marker shows,
        because keystrokes sent before the shell has started are lost; so
        ``command`` must be safe to repeat.
        """
        tag = f"cx{secrets.token_hex(4)}"
        line = f"echo {tag}-$((0+1)); {command} 2>&1; echo {tag}-$((0+2))\n"
        framed = re.compile(rf"^{tag}-1\n(.*?)^{tag}-2$", re.MULTILINE | re.DOTALL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._stream.send(b"\n" + line.encode())
            retype = time.monotonic() + 5.0
            while time.monotonic() < min(retype, deadline):
                found = framed.search(self.text())
                if found:
                    return found.group(1)
                time.sleep(0.05)
        raise TimeoutError(
            f"{self.domain}: no answer to {command!r} within {timeout}s; "
            f"console said:\n{self.text()[-2000:]}"
        )

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(libvirt.libvirtError):
            self._stream.abort()
        self._reader.join(5)
        self._conn.close()

    def __enter__(self) -> GuestConsole:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

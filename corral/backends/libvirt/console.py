"""The serial console: what it printed so far, and an interactive attach.

What it printed is readiness's best signal (``corral-ready HOST``, cloud-init's
last line, a kernel panic) and what ``corral vm log`` shows, so it must be
readable on every service host, not only on this machine. Each domain's
serial port therefore logs (``<log file=... append='off'>``, written by the
service host's virtlogd; ``append='off'``: the file holds the current or last
boot) into a file ``HOST-console.log`` in the directory of the project's
storage pool that holds the host's seed (``RUNS/PROJECT``, or ``DIR/PROJECT``
for ``filepath DIR``). A file in a pool's directory is a volume of that pool,
so libvirt's storage API reads it from anywhere: a download stream
(``virStorageVolDownload``, length 0: up to the end of the file as it is
now) from a remote service host, a plain read on this machine. virtlogd runs
as root and the file is root's (mode 0600); libvirtd reads it as root too.

Why not the console stream (``virDomainOpenConsole``)? It carries only what
the guest prints while a client holds it open: to miss nothing, every start
would have to be paused, attached and resumed by a process that then stays
to buffer the output, and ``corral vm log`` run later, from another process
or machine, would still see nothing of the boot. The log file keeps the
whole boot for any client, at the cost of one pool refresh when the file
first appears (the pool learns of files it did not create only on refresh).

The path is read from the domain's own XML, so a domain defined by an
older Corral, logging to ``/var/log/libvirt/qemu``, is still read on this
machine; on a remote host such a log is outside every pool and the error
says to redefine the domain (``corral up --recreate`` or any ``upgrade`` of it).

The server's websocket console (``corral --server URL vm console``) is the
one user of the console stream: :class:`LibvirtConsole` holds it open, for
as long as a person is attached, and relays bytes both ways.

The interactive attach runs ``virsh -c URI console NAME``: virsh already does
raw terminal mode, the ``Ctrl+]`` escape and window-size handling, which a
hand-written stream pump would have to re-implement; any URI Corral reaches
a host by (``qemu+tls://...?pkipath=...`` too) is passed as it is.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path, PurePosixPath

import libvirt
from lxml import etree

from corral.backends.base import StoragePlace
from corral.backends.libvirt import names, pools
from corral.backends.libvirt.connection import error_code, libvirt_errors
from corral.errors import BackendError
from corral.model import Host

CHUNK = 256 * 1024


def log_path(runs_dir: str, project: str, host: Host) -> str:
    """Where ``host``'s serial console logs: beside its seed, in the project's pool
    directory (``RUNS/PROJECT``, or ``DIR/PROJECT`` with ``filepath DIR``)."""
    directory = StoragePlace.of(host).directory or runs_dir
    return str(PurePosixPath(directory) / project / names.console_log_volume(host.name))


def logged_path(domain: libvirt.virDomain) -> str | None:
    """The file the domain's serial console logs to, from its XML; None without one."""
    root = etree.fromstring(domain.XMLDesc(0).encode())
    for log in root.iterfind("devices/serial/log"):
        if log.get("file"):
            return log.get("file")
    return None


def console_output(conn: libvirt.virConnect, domain: libvirt.virDomain, *, local: bool) -> str:
    """What the domain's serial console printed in its current (or last) boot;
    empty when it never printed anything."""
    name = domain.name()
    with libvirt_errors(f"read the console log of {name}"):
        path = logged_path(domain)
    if path is None:
        raise BackendError(f"domain {name} keeps no console log (its serial port has no <log>)")
    with libvirt_errors(f"read the console log of {name}"):
        return log_bytes(conn, path, local=local).decode("utf-8", errors="replace")


def log_bytes(conn: libvirt.virConnect, path: str, *, local: bool) -> bytes:
    """The log file at ``path`` as it is now: read in place on this machine, through
    its pool's download stream on another; empty when it does not exist yet."""
    if local:
        return _read_file(path)
    volume = _volume_at(conn, path)
    return b"" if volume is None else _download(conn, volume)


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise BackendError(f"cannot read the console log {path}: {exc.strerror}") from exc


def _volume_at(conn: libvirt.virConnect, path: str) -> libvirt.virStorageVol | None:
    """The volume at ``path``; the pool holding its directory is refreshed when the
    file is new to it. None when that pool has no such file (the guest never
    started); BackendError when no pool holds the directory."""
    found = _lookup(conn, path)
    if found is not None:
        return found
    directory = os.path.dirname(path)
    holders = pools.at(conn, directory)
    if not holders:
        raise BackendError(
            f"the console log {path} is on a remote service host, outside every storage pool",
            hint="the domain was defined by an older Corral: recreate it "
                 "(corral up --recreate FILE)",
        )
    for pool in holders:
        pool.refresh(0)
    return _lookup(conn, path)


def _lookup(conn: libvirt.virConnect, path: str) -> libvirt.virStorageVol | None:
    try:
        return conn.storageVolLookupByPath(path)
    except libvirt.libvirtError as exc:
        if error_code(exc) in (libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_NO_STORAGE_POOL):
            return None
        raise


def _download(conn: libvirt.virConnect, volume: libvirt.virStorageVol) -> bytes:
    """The whole file as it is now (length 0 reads to its end, whatever size the
    pool last recorded for it)."""
    stream = conn.newStream(0)
    volume.download(stream, 0, 0, 0)
    parts = []
    while True:
        data = stream.recv(CHUNK)
        if not isinstance(data, bytes) or not data:
            break
        parts.append(data)
    stream.finish()
    return b"".join(parts)


def console_command(domain: str, uri: str) -> list[str]:
    """argv for an interactive console on ``domain``; exit it with Ctrl+]."""
    virsh = shutil.which("virsh")
    if virsh is None:
        raise BackendError(
            "cannot attach a console: virsh is not installed", hint="install libvirt-clients"
        )
    return [virsh, "-c", uri, "console", "--force", domain]


class LibvirtConsole:
    """A domain's console stream (``virDomainOpenConsole``), for the server's
    websocket console: a blocking stream, read on a thread of its own, written
    from another; closing it aborts the stream, which ends a waiting read."""

    def __init__(self, stream: libvirt.virStream, name: str) -> None:
        self._stream = stream
        self._name = name
        self._closed = False

    def read(self) -> bytes:
        if self._closed:
            return b""
        try:
            data = self._stream.recv(CHUNK)
        except libvirt.libvirtError:
            return b""  # aborted, or the guest went away: the console ended either way
        return data if isinstance(data, bytes) else b""

    def write(self, data: bytes) -> None:
        with libvirt_errors(f"write to the console of {self._name}"):
            self._stream.send(data)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(libvirt.libvirtError):  # already ended
                self._stream.abort()


def open_stream(conn: libvirt.virConnect, domain: libvirt.virDomain) -> LibvirtConsole:
    """The console of a running domain, taken from whoever held it (``--force``)."""
    name = domain.name()
    stream = conn.newStream(0)
    with libvirt_errors(f"open the console of {name}"):
        domain.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
    return LibvirtConsole(stream, name)

"""One libvirt connection per service host, and libvirt errors turned into Corral's.

libvirt connections are thread-safe, so a backend opens exactly one and shares
it between the threads of the operations layer's pool. The connection is
opened lazily, on first use, so building a backend for every configured
service host costs nothing until one is actually used.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import libvirt

from corral.errors import BackendError, NotFoundError

# libvirt's default error handler prints every error to stderr, even those the
# caller catches. The handler is process-wide by libvirt's design; silencing it
# is what lets library code report errors only through exceptions.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

_NOT_FOUND = frozenset(
    {
        libvirt.VIR_ERR_NO_DOMAIN,
        libvirt.VIR_ERR_NO_NETWORK,
        libvirt.VIR_ERR_NO_STORAGE_POOL,
        libvirt.VIR_ERR_NO_STORAGE_VOL,
    }
)


@contextmanager
def libvirt_errors(what: str) -> Iterator[None]:
    """Turn a libvirtError raised inside into a BackendError saying what failed.

    ``what`` names the operation and object ("start domain lab-web"); the
    message then carries libvirt's own explanation, usually the precise one.
    """
    try:
        yield
    except libvirt.libvirtError as exc:
        code = exc.get_error_code()
        message = exc.get_error_message() or str(exc)
        if code in _NOT_FOUND:
            raise NotFoundError(f"cannot {what}: {message}") from exc
        raise BackendError(f"cannot {what}: {message}") from exc


def error_code(exc: libvirt.libvirtError) -> int:
    """The libvirt error code of ``exc`` (``VIR_ERR_*``)."""
    code = exc.get_error_code()
    return int(code) if code is not None else -1


CLOSE_WAIT_S = 1.0


class Connection:
    """A lazily opened, shared connection to one libvirt URI."""

    def __init__(self, service_host: str, uri: str) -> None:
        self.service_host = service_host
        self.uri = uri
        self._conn: libvirt.virConnect | None = None
        self._lock = threading.Lock()

    def get(self) -> libvirt.virConnect:
        """The open connection, opened on first call (thread-safe)."""
        with self._lock:
            if self._conn is None:
                try:
                    self._conn = libvirt.open(self.uri)
                except libvirt.libvirtError as exc:
                    raise BackendError(
                        f"cannot connect to service host '{self.service_host}' ({self.uri}): "
                        f"{exc.get_error_message() or exc}",
                        hint="is libvirtd running there? (make setup starts it locally)",
                    ) from exc
            return self._conn

    def close(self) -> None:
        """Close the connection; a later get() opens a new one.

        A thread still stuck opening it (a host that does not answer, given up
        on after a deadline) holds the lock: then there is nothing to close,
        and waiting for that thread would hang the caller.
        """
        if not self._lock.acquire(timeout=CLOSE_WAIT_S):
            return
        try:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None
        finally:
            self._lock.release()

    @property
    def is_local(self) -> bool:
        """True when the URI names this machine (no host part), so its files are ours."""
        rest = self.uri.split("://", 1)[1] if "://" in self.uri else ""
        return rest.startswith("/") or rest == ""

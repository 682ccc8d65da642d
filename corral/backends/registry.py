"""Which backend class serves a service host URI, loaded only when one is needed.

A URI's driver is the part of its scheme before ``+`` (``qemu+ssh`` ->
``qemu``). Backends register for drivers in the ``corral.backends``
entry-point group (Corral's own libvirt backend for ``qemu``, ``test``,
``xen`` and ``lxc``); a class is imported only when a service host with
that driver is opened, so ``corral validate`` and ``show`` run where
libvirt-python is not installed. An unknown driver is an
:class:`UnsupportedURIError` naming the service host and the drivers Corral
knows, never a guess.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType

from corral.backends.base import Backend
from corral.errors import BackendError

ENTRY_POINT_GROUP = "corral.backends"
DEFAULT_RUNS_DIR = "/var/lib/corral/runs"

_LIBVIRT = "corral.backends.libvirt.backend:LibvirtBackend"
# Corral's own registrations, as pyproject.toml declares them in the group; used
# for a driver the installed metadata does not name (an install that predates
# the group), so an outdated editable install still finds its own backend.
BUILTIN: Mapping[str, str] = MappingProxyType(
    {"qemu": _LIBVIRT, "test": _LIBVIRT, "xen": _LIBVIRT, "lxc": _LIBVIRT}
)


class UnsupportedURIError(BackendError):
    """A service host URI whose driver no backend serves."""


def driver_of(uri: str) -> str:
    """``qemu+ssh://h/system`` -> ``qemu``; ``""`` when the URI has no scheme."""
    scheme, sep, _ = uri.partition("://")
    return scheme.split("+", 1)[0].lower() if sep else ""


def registered(found: Iterable[EntryPoint] | None = None) -> dict[str, EntryPoint]:
    """Driver -> entry point: the group's entries over Corral's built-in ones."""
    table = {
        name: EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in BUILTIN.items()
    }
    group = entry_points(group=ENTRY_POINT_GROUP) if found is None else found
    table.update({ep.name.lower(): ep for ep in group})
    return table


def backend_class(
    name: str, uri: str, found: Iterable[EntryPoint] | None = None,
    table: Mapping[str, EntryPoint] | None = None,
) -> type[Backend]:
    """The backend class for service host ``name``'s URI, imported now (from
    ``table``, the :func:`registered` one, when the caller has read it)."""
    table = registered(found) if table is None else table
    entry = table.get(driver_of(uri))
    if entry is None:
        known = ", ".join(sorted(table))
        raise UnsupportedURIError(
            f"service host '{name}': no backend for URI '{uri}'",
            hint=f"use a libvirt URI with one of these drivers: {known}",
        )
    try:
        loaded = entry.load()
    except ImportError as error:
        missing = getattr(error, "name", None) or str(error)
        raise BackendError(
            f"service host '{name}': its backend ({entry.value}) cannot be loaded: "
            f"module '{missing}' is missing",
            hint="install libvirt-python (pip install 'corral[libvirt]') for libvirt URIs"
            if missing == "libvirt" else None,
        ) from None
    if not (isinstance(loaded, type) and issubclass(loaded, Backend)):
        raise BackendError(f"entry point '{entry.name} = {entry.value}' is not a Backend class")
    return loaded


def open_backend(
    name: str,
    uri: str,
    runs_dir: str | os.PathLike[str] = DEFAULT_RUNS_DIR,
    templates_dir: str | os.PathLike[str] | None = None,
) -> Backend:
    """The backend for service host ``name`` at ``uri`` (its connection opens on first use).

    ``templates_dir`` is where a remote service host keeps its copies of the
    site's templates (None: the backend's default).
    """
    return BackendOpener().open(name, uri, runs_dir, templates_dir)


class BackendOpener:
    """:func:`open_backend` for the many service hosts of one session, the installed
    entry points read once: reading them costs about 10 ms of the interpreter,
    and a ``status`` of ten service hosts opened them one after another."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: Mapping[str, EntryPoint] | None = None

    def open(
        self,
        name: str,
        uri: str,
        runs_dir: str | os.PathLike[str] = DEFAULT_RUNS_DIR,
        templates_dir: str | os.PathLike[str] | None = None,
    ) -> Backend:
        with self._lock:
            if self._table is None:
                self._table = MappingProxyType(registered())
            table = self._table
        cls = backend_class(name, uri, table=table)
        if templates_dir is None:
            return cls(name, uri, runs_dir)  # type: ignore[call-arg]
        return cls(name, uri, runs_dir, templates_dir)  # type: ignore[call-arg]

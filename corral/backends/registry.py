"""Which backend class serves a service host URI.

A URI's driver is the part of its scheme before ``+`` (``qemu+ssh`` ->
``qemu``). The table maps drivers to backend classes; an unknown driver is an
:class:`UnsupportedURIError` naming the service host and listing the drivers
Corral knows, never a guess.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType

from corral.backends.base import Backend
from corral.backends.libvirt.backend import DEFAULT_RUNS_DIR, LibvirtBackend
from corral.errors import BackendError

BACKENDS: Mapping[str, type[LibvirtBackend]] = MappingProxyType(
    {
        "qemu": LibvirtBackend,
        "test": LibvirtBackend,
        "xen": LibvirtBackend,
        "lxc": LibvirtBackend,
    }
)


class UnsupportedURIError(BackendError):
    """A service host URI whose driver no backend serves."""


def driver_of(uri: str) -> str:
    """``qemu+ssh://h/system`` -> ``qemu``; ``""`` when the URI has no scheme."""
    scheme, sep, _ = uri.partition("://")
    return scheme.split("+", 1)[0].lower() if sep else ""


def backend_class(name: str, uri: str) -> type[LibvirtBackend]:
    driver = driver_of(uri)
    try:
        return BACKENDS[driver]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise UnsupportedURIError(
            f"service host '{name}': no backend for URI '{uri}'",
            hint=f"use a libvirt URI with one of these drivers: {known}",
        ) from None


def open_backend(
    name: str, uri: str, runs_dir: str | os.PathLike[str] = DEFAULT_RUNS_DIR
) -> Backend:
    """The backend for service host ``name`` at ``uri`` (its connection opens on first use)."""
    return backend_class(name, uri)(name, uri, runs_dir)

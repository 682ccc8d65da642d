"""Backends come from the ``corral.backends`` entry-point group, imported only when used."""

from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from corral.backends import registry
from corral.backends.libvirt.backend import LibvirtBackend
from corral.errors import BackendError

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_registers_the_libvirt_backend_for_its_drivers() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert declared[registry.ENTRY_POINT_GROUP] == dict(registry.BUILTIN)
    assert sorted(registry.BUILTIN) == ["lxc", "qemu", "test", "xen"]


def test_group_entries_are_loaded_for_their_driver() -> None:
    group = [EntryPoint("esx", "corral.backends.libvirt.backend:LibvirtBackend",
                        registry.ENTRY_POINT_GROUP)]
    assert registry.backend_class("v", "esx://host/", group) is LibvirtBackend
    with pytest.raises(registry.UnsupportedURIError) as unknown:
        registry.backend_class("v", "vbox:///session", group)
    assert "esx" in (unknown.value.hint or "") and "qemu" in (unknown.value.hint or "")


def test_a_backend_that_cannot_be_imported_is_a_clear_error() -> None:
    group = [EntryPoint("qemu", "corral_no_such_module:Backend", registry.ENTRY_POINT_GROUP)]
    with pytest.raises(BackendError, match="module 'corral_no_such_module' is missing"):
        registry.backend_class("local", "qemu:///system", group)


def test_an_entry_that_is_not_a_backend_is_refused() -> None:
    group = [EntryPoint("qemu", "corral.errors:Outcome", registry.ENTRY_POINT_GROUP)]
    with pytest.raises(BackendError, match="is not a Backend class"):
        registry.backend_class("local", "qemu:///system", group)

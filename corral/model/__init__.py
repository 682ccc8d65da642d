"""The typed, validated model a project file resolves to."""

from corral.model.project import (
    Disk,
    FileSpec,
    Host,
    Interface,
    PlacedBy,
    Project,
    Switch,
    SwitchMode,
    Virt,
    WaitKind,
    WaitSpec,
)

__all__ = [
    "Disk",
    "FileSpec",
    "Host",
    "Interface",
    "PlacedBy",
    "Project",
    "Switch",
    "SwitchMode",
    "Virt",
    "WaitKind",
    "WaitSpec",
]

"""Backends: the interface Corral drives service hosts through, and its registry."""

from corral.backends.base import (
    Backend,
    BootSpec,
    Capabilities,
    DomainSpec,
    DomainState,
    DomainStats,
    HostInfo,
    NicSpec,
    Observed,
    ObservedDomain,
    ObservedNetwork,
    ObservedVolume,
    ShutdownOutcome,
    StaticLease,
    Survey,
    TemplateLike,
)
from corral.backends.registry import UnsupportedURIError, backend_class, open_backend

__all__ = [
    "Backend",
    "BootSpec",
    "Capabilities",
    "DomainSpec",
    "DomainState",
    "DomainStats",
    "HostInfo",
    "NicSpec",
    "Observed",
    "ObservedDomain",
    "ObservedNetwork",
    "ObservedVolume",
    "ShutdownOutcome",
    "StaticLease",
    "Survey",
    "TemplateLike",
    "UnsupportedURIError",
    "backend_class",
    "open_backend",
]

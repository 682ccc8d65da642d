"""UUIDs and MACs that must be unique across a site.

Two domains with one UUID cannot both be defined on a service host, and two
NICs with one MAC on a LAN (a shared host bridge, a site bridge) break each
other's traffic wherever they run. Inside one project the builder already
refuses a UUID or MAC written twice, and derives MACs that avoid each other;
this module compares a project with the site's other projects, which a
derived MAC of one may meet as a MAC written in another.

The other projects are the ones the state database recorded at their last
``up``/``build``/``upgrade`` (:func:`corral.ops.clashes.site_clashes`): the
complete view of the site that needs no service host to answer, and the one
that still knows where each host was written.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from corral.errors import Diagnostic, Span
from corral.model import Host, Project


@dataclass(frozen=True, slots=True)
class Claim:
    """One identity a host holds: its UUID or one NIC's MAC."""

    kind: str  # "uuid" or "MAC"
    value: str
    project: str
    host: Host
    interface: str | None = None

    @property
    def name(self) -> str:
        """``project.host``, and `` interface IF`` for a MAC."""
        where = f" interface {self.interface}" if self.interface else ""
        return f"{self.project}.{self.host.name}{where}"

    @property
    def holder(self) -> str:
        """:attr:`name` with the host's position when known."""
        at = f" ({self.host.origin})" if self.host.origin is not None else ""
        return f"{self.name}{at}"


def claims(project: Project) -> Iterator[Claim]:
    """Every UUID and MAC the hosts of ``project`` hold."""
    for host in project.hosts.values():
        if host.uuid is not None:
            yield Claim("uuid", host.uuid, project.name, host)
        for nic in host.interfaces:
            yield Claim("MAC", nic.mac, project.name, host, nic.name)


def identity_clashes(
    project: Project, others: Iterable[Project], hidden: Collection[str] = ()
) -> list[Diagnostic]:
    """A positioned problem for each UUID or MAC of ``project`` that a host of
    another project of the site holds too, naming both hosts; a host of a
    ``hidden`` project (one the caller may not see) is not named."""
    taken: Mapping[tuple[str, str], Claim] = {
        (claim.kind, claim.value): claim
        for other in others if other.name != project.name
        for claim in claims(other)
    }
    problems = []
    for claim in claims(project):
        rival = taken.get((claim.kind, claim.value))
        if rival is None:
            continue
        origin = claim.host.origin
        span = Span(origin.file, origin.line, origin.column) if origin else Span(
            "<project>", 1, 1
        )
        problems.append(Diagnostic(
            span,
            f"host {claim.name}: {claim.kind} {claim.value} is also held by "
            + ("a host of another project" if rival.project in hidden else rival.holder),
            f"give one of them another {claim.kind}"
            + (" (or none: a MAC is derived when not given)" if claim.kind == "MAC" else ""),
        ))
    return problems

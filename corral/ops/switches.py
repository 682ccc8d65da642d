"""Switches as networks on service hosts: where they go, and making them so.

A switch goes where the hosts attached to it run (:mod:`corral.plan.spans`):
on one service host it is that host's own network; on several, a network of
the same name on each, forwarding onto that host's site bridge. This module
turns the site config into the spans, refuses at plan time what would split
a LAN, checks that the site bridges exist before anything changes, ensures
the networks, and removes a switch's networks from service hosts none of its
VMs runs on any more.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from corral.backends.base import StaticLease
from corral.config import SiteConfig
from corral.errors import CorralError, Diagnostic, SourceErrors, Span
from corral.model import Project, Switch
from corral.ops.observe import Sighting
from corral.ops.session import Session
from corral.plan.spans import SwitchSpan, shared_segments, span_problems
from corral.plan.spans import switch_spans as spans_of


def site_bridges(site: SiteConfig) -> dict[str, str | None]:
    """Each service host's site bridge (None where the site config gives none)."""
    return {name: host.site_bridge for name, host in site.service_hosts.items()}


def switch_spans(
    session: Session, project: Project, *, warn: bool = False
) -> dict[str, SwitchSpan]:
    """Where each switch's networks go (:mod:`corral.plan.spans`), from where the
    project's hosts run and the site's bridges.

    Raises SourceErrors, at the switches' positions, when a switch would have
    to be split into separate LANs or cannot span its service hosts; this
    runs when the plan is made, so ``corral plan`` refuses as ``up`` does.
    With ``warn``, cross-host switches that share a site bridge are warned of.
    """
    bridges = site_bridges(session.site)
    default = session.site.fallback_service_host()
    problems = span_problems(project, bridges, default)
    if problems:
        raise SourceErrors(problems)
    spans = spans_of(project, bridges, default)
    if warn:
        for message in shared_segments(spans):
            session.warn(f"project {project.name}: {message}")
    return spans


def static_leases(project: Project, switch: str) -> list[StaticLease]:
    return [
        StaticLease(nic.mac, nic.address, host.name)
        for host in project.hosts.values()
        for nic in host.interfaces
        if nic.switch == switch and nic.is_static and nic.address
    ]


def ensure_switches(
    session: Session,
    project: Project,
    spans: Mapping[str, SwitchSpan] | None = None,
    *,
    failed: dict[tuple[str, str], str] | None = None,
    unreachable: Collection[str] = (),
) -> dict[tuple[str, str], str]:
    """Ensure every switch on every service host that needs it, joined to the
    site bridge there when it spans several; (switch, host) -> network.

    With ``failed``, a switch that cannot be made on one service host is put
    there with the reason (skipped on an ``unreachable`` one) and the others go
    on; without it, the first error is raised."""
    if spans is None:
        spans = switch_spans(session, project)
    jobs = [
        (name, service_host)
        for name, span in sorted(spans.items())
        for service_host in span.service_hosts
        if service_host not in unreachable
    ]

    def ensure(job: tuple[str, str]) -> str:
        name, service_host = job
        return session.backend(service_host).ensure_network(
            project.name, project.switches[name], static_leases(project, name),
            site_bridge=spans[name].site_bridge(service_host),
        )

    if failed is None:
        return dict(zip(jobs, session.parallel(ensure, jobs), strict=True))
    made: dict[tuple[str, str], str] = {}
    for job, answer in zip(jobs, session.each(ensure, jobs, where=lambda j: j[1]), strict=True):
        if isinstance(answer, CorralError):
            failed[job] = answer.message
        else:
            made[job] = answer
    return made


def retire_networks(
    session: Session, sighting: Sighting, spans: Mapping[str, SwitchSpan]
) -> None:
    """Remove a switch's networks from service hosts where none of its VMs runs
    any more (they moved, or were removed); run after the hosts have changed,
    so no guest of the project is plugged into them."""
    for name, span in sorted(spans.items()):
        for seen in sighting.project.networks_of(name):
            if seen.service_host not in span.places:
                session.backend(seen.service_host).remove_network(seen.network)


def switch_problems(session: Session, project: Project) -> list[Diagnostic]:
    """Every reason the project's switches cannot be made, for ``check``: what
    :func:`switch_spans` refuses, and site bridges missing on their service hosts."""
    bridges = site_bridges(session.site)
    default = session.site.fallback_service_host()
    return span_problems(project, bridges, default) + _missing_bridges(
        session, project, spans_of(project, bridges, default)
    )


def _missing_bridges(
    session: Session, project: Project, spans: Mapping[str, SwitchSpan]
) -> list[Diagnostic]:
    """A cross-host switch needs its site bridge to exist on each of its service
    hosts (asked of libvirt once per host and bridge); where a host cannot
    tell, the guest's start names a missing bridge instead."""
    wanted = sorted({
        (service_host, bridge)
        for span in spans.values()
        for service_host, bridge in span.places.items()
        if bridge is not None
    })

    def look(item: tuple[str, str]) -> bool | None:
        try:
            return session.backend(item[0]).has_bridge(item[1])
        except CorralError:
            return None  # an unknown or unreachable service host is reported elsewhere

    missing = {item for item, found in zip(wanted, session.parallel(look, wanted),
                                           strict=True) if found is False}
    problems = []
    for name, span in sorted(spans.items()):
        for service_host, bridge in sorted(span.places.items()):
            if bridge is not None and (service_host, bridge) in missing:
                problems.append(Diagnostic(
                    _span(project.switches[name]),
                    f"switch {name}: service host {service_host} has no bridge {bridge} "
                    "(its site_bridge in the site config)",
                    "create that bridge there, joined at layer 2 to the other service "
                    "hosts' site bridges, or correct site_bridge",
                ))
    return problems


def _span(switch: Switch) -> Span:
    origin = switch.origin
    if origin is None:
        return Span("<project>", 1, 1)
    return Span(origin.file, origin.line, origin.column)

"""Recognise Corral's objects in libvirt, and read their state in bulk.

Nothing here consults Corral's database: a domain is Corral's when its
metadata says so, a network when its marker portgroup says so, a volume when
it sits in a ``corral-PROJECT`` pool. States come from one
``virConnectGetAllDomainStats`` call; per-domain calls are limited to reading
the metadata (cheap, no guest involvement) and, for shut-off domains, asking
whether a managed save image exists. Observing only reads: it starts no
pool, network or domain and defines nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import libvirt
from lxml import etree

from corral.backends.base import (
    DomainState,
    DomainStats,
    ObservedDomain,
    ObservedNetwork,
    ObservedVolume,
)
from corral.backends.libvirt import names
from corral.backends.libvirt.connection import error_code, libvirt_errors
from corral.backends.libvirt.metadata import (
    NS,
    RUNTIME_NS,
    DomainMark,
    network_mark_of,
    parse_domain_mark_xml,
    parse_started,
)
from corral.backends.libvirt.networks import inactive_flags, inactive_root
from corral.backends.libvirt.storage import is_local
from corral.errors import BackendError
from corral.images import qemuimg
from corral.model import Host

_STATS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
)

# A domain busy with a job (being started, migrated, saved) gives the figures
# that need none (its state, its CPU time) at once, instead of holding the whole
# call, and every reading waiting on it, until the job ends: a guest starting
# under TCG holds its job for a second or more.
_NOWAIT = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT

_STATE_NAMES = {
    libvirt.VIR_DOMAIN_RUNNING: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: DomainState.PAUSED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: DomainState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: DomainState.RUNNING,  # shutting down, still running
    libvirt.VIR_DOMAIN_SHUTOFF: DomainState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: DomainState.CRASHED,
}


def map_state(state: int, reason: int, has_managed_save: bool) -> DomainState:
    """Corral's state for a libvirt (state, reason) pair."""
    mapped = _STATE_NAMES.get(state, DomainState.UNKNOWN)
    if mapped is DomainState.SHUTOFF:
        if has_managed_save:
            return DomainState.SUSPENDED
        if reason == libvirt.VIR_DOMAIN_SHUTOFF_CRASHED:
            return DomainState.CRASHED
    return mapped


def read_mark(domain: libvirt.virDomain, flags: int = 0) -> DomainMark | None:
    """The Corral mark of a domain, or None when it has none (not Corral's)."""
    try:
        xml = domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS, flags)
    except libvirt.libvirtError as exc:
        if error_code(exc) in (libvirt.VIR_ERR_NO_DOMAIN_METADATA, libvirt.VIR_ERR_NO_DOMAIN):
            return None
        raise
    return parse_domain_mark_xml(xml)


def read_started(domain: libvirt.virDomain) -> float | None:
    """When Corral started this run of the domain (live metadata), or None."""
    try:
        xml = domain.metadata(
            libvirt.VIR_DOMAIN_METADATA_ELEMENT, RUNTIME_NS, libvirt.VIR_DOMAIN_AFFECT_LIVE
        )
    except libvirt.libvirtError:
        return None
    return parse_started(xml)


@dataclass(frozen=True, slots=True)
class _Seen:
    """One Corral domain from the bulk call: its handle, name, mark, stats and state.

    The name is asked once: every call on a handle, even one libvirt answers
    locally, gives up the interpreter lock and waits to take it back, which
    costs most when many service hosts are read at once."""

    domain: libvirt.virDomain
    name: str
    mark: DomainMark
    stats: dict[str, int]
    state: DomainState


def _marked_stats(
    conn: libvirt.virConnect, project: str | None, flags: int
) -> list[tuple[libvirt.virDomain, dict[str, int], DomainMark]]:
    """Every Corral domain (of ``project``) with its statistics and mark.

    The state alone is cheap for any domain, so one bulk call covers them all.
    Fuller statistics make libvirt ask each running QEMU (balloon, vCPUs), so
    the marks are read first and only Corral's domains of the project are
    asked: other projects' and other users' guests cost nothing.
    """
    try:
        return _marked_stats_in_bulk(conn, project, flags)
    except libvirt.libvirtError as exc:
        if error_code(exc) != libvirt.VIR_ERR_NO_SUPPORT:
            raise
        return _marked_stats_one_by_one(conn, project)  # a driver without them: LXC


def _marked_stats_in_bulk(
    conn: libvirt.virConnect, project: str | None, flags: int
) -> list[tuple[libvirt.virDomain, dict[str, int], DomainMark]]:
    if flags == libvirt.VIR_DOMAIN_STATS_STATE:
        pairs = conn.getAllDomainStats(flags, _NOWAIT)
        return [(d, s, m) for d, s in pairs if (m := read_mark(d)) is not None
                and (project is None or m.project == project)]
    marks: dict[str, DomainMark] = {}
    chosen = []
    # One mark after another: several calls in flight per connection were
    # measured slower (bench/README.md), the daemons' CPU being the bound.
    for domain in conn.listAllDomains(0):
        mark = read_mark(domain)
        if mark is None or (project is not None and mark.project != project):
            continue
        marks[domain.UUIDString()] = mark
        chosen.append(domain)
    if not chosen:
        return []
    # Domains removed since the listing are skipped by libvirt, not an error.
    found = conn.domainListGetStats(chosen, flags, _NOWAIT)
    return [(d, s, m) for d, s in found if (m := marks.get(d.UUIDString())) is not None]


def _marked_stats_one_by_one(
    conn: libvirt.virConnect, project: str | None
) -> list[tuple[libvirt.virDomain, dict[str, int], DomainMark]]:
    """The same figures for a driver without bulk statistics (LXC: containers),
    from one ``virDomainGetInfo`` per Corral domain: a container's process
    tree answers from its cgroups, so this costs no guest a thing."""
    found = []
    for domain in conn.listAllDomains(0):
        mark = read_mark(domain)
        if mark is None or (project is not None and mark.project != project):
            continue
        try:
            state, reason = domain.state(0)
            _, _, _, vcpus, cpu_time = domain.info()
        except libvirt.libvirtError as exc:
            if _vanished(exc):
                continue
            raise
        stats = {"state.state": state, "state.reason": reason}
        if state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED):
            # No balloon: the memory a container holds is its limit, the model's
            # memory (what GetInfo calls its memory is what it uses of that).
            stats |= {"cpu.time": cpu_time, "vcpu.current": vcpus}
        found.append((domain, stats, mark))
    return found


def _corral_domains(conn: libvirt.virConnect, project: str | None, flags: int) -> list[_Seen]:
    marked = _marked_stats(conn, project, flags)
    shut_off = any(int(s.get("state.state", -1)) == libvirt.VIR_DOMAIN_SHUTOFF
                   for _, s, _ in marked)
    saved = _managed_saves(conn) if shut_off else frozenset()
    seen = []
    for domain, stats, mark in marked:
        state_code = int(stats.get("state.state", -1))
        managed = state_code == libvirt.VIR_DOMAIN_SHUTOFF and domain.UUIDString() in saved
        state = map_state(state_code, int(stats.get("state.reason", 0)), managed)
        seen.append(_Seen(domain, domain.name(), mark, stats, state))
    return seen


def _managed_saves(conn: libvirt.virConnect) -> frozenset[str]:
    """UUIDs of the domains with a managed save image (suspended): one listing,
    instead of a call per stopped domain. A driver without saved states (LXC)
    has none."""
    try:
        listed = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE)
    except libvirt.libvirtError as exc:
        if error_code(exc) not in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_INVALID_ARG):
            raise
        return frozenset()
    return frozenset(d.UUIDString() for d in listed)


def domain_states(conn: libvirt.virConnect, project: str | None) -> dict[str, DomainState]:
    """State of each Corral domain from a state-only bulk call (no QEMU queries).

    Cheap enough to poll every half second while guests boot, unlike the full
    stats, which ask every running QEMU for its balloon and vCPUs.
    """
    with libvirt_errors("read domain states"):
        seen = _corral_domains(conn, project, libvirt.VIR_DOMAIN_STATS_STATE)
        return {item.name: item.state for item in seen}


def observe_domains(conn: libvirt.virConnect, project: str | None) -> tuple[ObservedDomain, ...]:
    with libvirt_errors("list domains"):
        seen = _corral_domains(conn, project, libvirt.VIR_DOMAIN_STATS_STATE)
        result = []
        for item in seen:
            # The persistent definition is what a plan compares against; a running
            # domain's live metadata may predate a redefinition.
            mark = item.mark
            if item.state in (DomainState.RUNNING, DomainState.PAUSED):
                mark = read_mark(item.domain, libvirt.VIR_DOMAIN_AFFECT_CONFIG) or mark
            result.append(
                ObservedDomain(
                    name=item.name,
                    project=mark.project,
                    host=mark.host,
                    model_hash=mark.model_hash,
                    template=mark.template,
                    service_host=mark.service_host,
                    state=item.state,
                    model=mark.model(),
                )
            )
    return tuple(sorted(result, key=lambda d: d.name))


def observe_networks(conn: libvirt.virConnect, project: str | None) -> tuple[ObservedNetwork, ...]:
    result = []
    with libvirt_errors("list networks"):
        # Two listings say which networks are active, instead of one call per network.
        active_ones = conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE)
        inactive_ones = conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_INACTIVE)
        listed = [(n, True) for n in active_ones] + [(n, False) for n in inactive_ones]
        flags = inactive_flags(conn) if listed else 0
        for network, active in listed:
            try:
                root = inactive_root(network, flags)
                mark = network_mark_of(root)
                if mark is None or (project is not None and mark.project != project):
                    continue
            except libvirt.libvirtError as exc:
                if _vanished(exc):
                    continue
                raise
            bridge = root.find("bridge")
            result.append(
                ObservedNetwork(
                    name=network.name(),
                    project=mark.project,
                    switch=mark.switch,
                    model_hash=mark.model_hash,
                    active=active,
                    bridge=bridge.get("name") if bridge is not None else None,
                    model=mark.model(),
                    site_bridge=mark.site_bridge,
                )
            )
    return tuple(sorted(result, key=lambda n: n.name))


def observe_volumes(conn: libvirt.virConnect, project: str | None) -> tuple[ObservedVolume, ...]:
    """Run copies and seeds in the projects' pools, changing nothing.

    An active pool is asked through the storage API. Libvirt cannot list an
    inactive pool's volumes without starting it, and observing must not start
    anything, so an inactive pool on this machine is read from its target
    directory (backing files through ``qemu-img info``); on a remote service
    host its volumes stay unknown (not reported) until the pool is started.
    """
    result: list[ObservedVolume] = []
    with libvirt_errors("list storage volumes"):
        for pool in conn.listAllStoragePools(0):
            owner = names.project_of_pool(pool.name())
            logical = names.volume_group_of_pool(pool.name()) is not None
            if not logical and (owner is None or (project is not None and owner != project)):
                continue
            try:
                if pool.isActive():
                    result += _active_pool_volumes(pool, owner, logical, project)
                elif is_local(conn) and owner is not None and not logical:
                    result += _directory_volumes(pool, owner)
            except libvirt.libvirtError as exc:
                if _vanished(exc):
                    continue
                raise
    return tuple(sorted(result, key=lambda v: (v.pool, v.name)))


def _parse(
    volume: str, owner: str | None, logical: bool
) -> tuple[str, str, str, str | None] | None:
    """``(project, host, kind, disk)`` of a volume in one of Corral's pools."""
    if logical:
        return names.parse_logical_volume(volume)
    parsed = names.parse_volume(volume)
    if parsed is None or owner is None:
        return None
    return (owner, *parsed)


def _active_pool_volumes(
    pool: libvirt.virStoragePool, owner: str | None, logical: bool, project: str | None
) -> list[ObservedVolume]:
    result = []
    for volume in pool.listAllVolumes(0):
        parsed = _parse(volume.name(), owner, logical)
        if parsed is None or (project is not None and parsed[0] != project):
            continue
        try:
            root = etree.fromstring(volume.XMLDesc(0).encode())
            path = volume.path()
        except libvirt.libvirtError as exc:
            if _vanished(exc):
                continue
            raise
        result.append(
            ObservedVolume(
                pool=pool.name(),
                name=volume.name(),
                path=path,
                project=parsed[0],
                host=parsed[1],
                kind=parsed[2],
                backing=root.findtext("backingStore/path") or None,
                disk=parsed[3],
                capacity=int(root.findtext("capacity") or 0) or None,
            )
        )
    return result


def _directory_volumes(pool: libvirt.virStoragePool, owner: str) -> list[ObservedVolume]:
    """The volumes of an inactive pool whose directory is on this machine."""
    target = etree.fromstring(pool.XMLDesc(0).encode()).findtext("target/path")
    if not target:
        return []
    try:
        entries = sorted(entry for entry in Path(target).iterdir() if entry.is_file())
    except OSError:
        return []  # its directory is gone: nothing to report
    result = []
    for entry in entries:
        parsed = names.parse_volume(entry.name)
        if parsed is None:
            continue
        backing, capacity = None, None
        if parsed[1] in ("disk", "data"):
            try:
                info = qemuimg.info(entry)
                backing, capacity = info.backing_file, info.virtual_size
            except BackendError:
                pass  # unreadable image: still the host's volume
        result.append(
            ObservedVolume(
                pool=pool.name(), name=entry.name, path=str(entry), project=owner,
                host=parsed[0], kind=parsed[1], backing=backing, disk=parsed[2],
                capacity=capacity,
            )
        )
    return result


_GONE = frozenset({
    libvirt.VIR_ERR_NO_DOMAIN,
    libvirt.VIR_ERR_NO_NETWORK,
    libvirt.VIR_ERR_NO_STORAGE_POOL,
    libvirt.VIR_ERR_NO_STORAGE_VOL,
})


def _vanished(exc: libvirt.libvirtError) -> bool:
    """True when an object listed a moment ago was removed before it could be read.

    Listing and reading are separate calls, and other projects (or other
    corral processes) create and remove objects meanwhile; what is gone is
    simply not there, not an error of this observation.
    """
    return error_code(exc) in _GONE


class _Unparsed:
    """Marks a model argument the caller did not give."""


_UNPARSED = _Unparsed()


def domain_stats(
    conn: libvirt.virConnect, service_host: str, project: str | None, now: float | None = None
) -> list[DomainStats]:
    """See :meth:`corral.backends.base.Backend.domain_stats`."""
    now = time.time() if now is None else now
    rows = []
    with libvirt_errors("read domain statistics"):
        for item in _corral_domains(conn, project, _STATS):
            rows.append(_row(item, service_host, now))
    return sorted(rows, key=lambda r: r.domain)


def _row(
    item: _Seen, service_host: str, now: float, model: Host | _Unparsed | None = _UNPARSED
) -> DomainStats:
    """``model``: the mark's model when the caller parsed it already."""
    stats, mark = item.stats, item.mark
    active = item.state in (DomainState.RUNNING, DomainState.PAUSED)
    balloon = stats.get("balloon.current")
    vcpus = stats.get("vcpu.current")
    # Drivers without balloon/vcpu stats (the test driver) fall back to the
    # recorded model; parsing it only then keeps 1,000-row status fast.
    if isinstance(model, _Unparsed):
        model = mark.model() if not (balloon and vcpus) else None
    memory_mib = int(balloon) // 1024 if balloon else (model.memory_mib if model else None)
    vcpu_count = int(vcpus) if vcpus else (model.vcpus if model else None)
    cpu_time = stats.get("cpu.time")
    # The live mark carries the start time (one call per domain); domains
    # started by earlier versions keep it in the runtime element.
    started = (mark.started if mark.started is not None else read_started(item.domain)
               ) if active else None
    uptime = max(now - started, 0.0) if started is not None else None
    percent = None
    if uptime and cpu_time is not None and vcpu_count:
        percent = round(100.0 * (int(cpu_time) / 1e9) / (uptime * vcpu_count), 1)
    return DomainStats(
        domain=item.name,
        project=mark.project,
        host=mark.host,
        service_host=mark.service_host or service_host,
        state=item.state,
        memory_mib=memory_mib,
        vcpus=vcpu_count,
        cpu_time_ns=int(cpu_time) if cpu_time is not None else None,
        uptime_s=round(uptime, 1) if uptime is not None else None,
        cpu_percent=percent,
    )

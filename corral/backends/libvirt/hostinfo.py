"""Facts about a service host, and the virt type a host can actually run.

Asked of libvirt, not assumed: the virt types are the domain types the
host's capabilities offer for hvm guests (``kvm`` appears only where KVM
works, see docs/architecture.md on masked ``/dev/kvm``). libvirt's test driver offers its
own type ``test`` and accepts QEMU domain XML, so it counts as a qemu host.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import libvirt
from lxml import etree

from corral.backends.base import Capabilities, HostInfo, NodeStats
from corral.backends.libvirt.connection import libvirt_errors
from corral.errors import BackendError

T = TypeVar("T")

RUNNABLE = ("kvm", "qemu")


@dataclass(frozen=True, slots=True)
class _LiveApis:
    """Which calls a libvirt driver implements on a running domain."""

    memory: bool  # virDomainSetMemoryFlags(AFFECT_LIVE)
    vcpus: bool  # virDomainSetVcpusFlags(AFFECT_LIVE)
    devices: bool  # virDomainAttachDeviceFlags / DetachDeviceFlags(AFFECT_LIVE)


# libvirt has no call that says whether a driver implements an API (it answers
# "not supported by the connection driver" when called), so this is libvirt's
# driver support matrix; what the host itself reports (domain capabilities,
# host capabilities, vCPU maximum) narrows it down in :func:`capabilities`.
# A driver not listed can do nothing live: its changes wait for the next boot.
DRIVER_LIVE_APIS: dict[str, _LiveApis] = {
    "QEMU": _LiveApis(memory=True, vcpus=True, devices=True),
    "XEN": _LiveApis(memory=True, vcpus=True, devices=True),
    "LXC": _LiveApis(memory=True, vcpus=False, devices=True),
    "TEST": _LiveApis(memory=True, vcpus=True, devices=False),
}
# Disk buses a guest can take a disk on while it runs (not ide, sata or fdc).
HOTPLUG_DISK_BUSES = frozenset({"virtio", "scsi", "usb"})


def version_text(number: int) -> str:
    """libvirt's packed version (major*1e6 + minor*1e3 + micro) as ``9.0.0``."""
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def virt_types(capabilities_xml: str) -> tuple[str, ...]:
    """Domain types offered for hvm guests, with the test driver counted as qemu."""
    root = etree.fromstring(capabilities_xml.encode())
    found: list[str] = []
    for guest in root.iterfind("guest"):
        if guest.findtext("os_type") != "hvm":
            continue
        for domain in guest.iterfind("arch/domain"):
            kind = "qemu" if domain.get("type") == "test" else domain.get("type", "")
            if kind and kind not in found:
                found.append(kind)
    return tuple(sorted(found))


def resolve_virt_type(requested: str, offered: tuple[str, ...], service_host: str) -> str:
    """``auto`` -> kvm if offered else qemu; anything else must be offered."""
    kind = requested.lower()
    if kind == "auto":
        if "kvm" in offered:
            return "kvm"
        if "qemu" in offered:
            return "qemu"
    elif kind in RUNNABLE and kind in offered:
        return kind
    usable = ", ".join(k for k in offered if k in RUNNABLE) or "none"
    raise BackendError(
        f"service host '{service_host}' cannot run {kind} guests (it offers: {usable})",
        hint="use kvm or qemu, or virt_type = auto in the site config",
    )


def host_info(conn: libvirt.virConnect, service_host: str, uri: str) -> HostInfo:
    with libvirt_errors(f"describe service host {service_host}"):
        info = conn.getInfo()
        offered = virt_types(conn.getCapabilities())
        return HostInfo(
            service_host=service_host,
            uri=uri,
            hostname=conn.getHostname(),
            cpus=int(info[2]),
            memory_mib=int(info[1]),
            libvirt_version=version_text(conn.getLibVersion()),
            hypervisor=conn.getType(),
            hypervisor_version=version_text(conn.getVersion()),
            virt_types=offered,
            memory_free_mib=int(conn.getFreeMemory()) // (1024 * 1024),
            virt_type=resolve_virt_type("auto", offered, service_host)
            if any(k in RUNNABLE for k in offered)
            else "none",
        )


def capabilities(conn: libvirt.virConnect, service_host: str) -> Capabilities:
    """What this host can do to a running guest, from the driver and what it reports.

    Domain capabilities (where the driver has them) give the vCPU maximum and
    the disk buses; the host capabilities say whether live migration is
    offered. The test driver has no domain capabilities: its vCPU maximum
    comes from ``virConnectGetMaxVcpus`` and it cannot hotplug devices.
    The console log is readable where QEMU's serial output is logged by
    virtlogd (any QEMU host, local or remote: see
    :mod:`corral.backends.libvirt.console`); the test driver logs nothing.
    """
    with libvirt_errors(f"read capabilities of {service_host}"):
        driver = conn.getType().upper()
        host_caps = conn.getCapabilities()
        offered = virt_types(host_caps)
        apis = DRIVER_LIVE_APIS.get(driver, _LiveApis(memory=False, vcpus=False, devices=False))
        domain_caps = _domain_capabilities(conn, offered)
        if domain_caps is not None:
            max_vcpus, disk_buses = _vcpu_max(domain_caps), _disk_buses(domain_caps)
        else:
            max_vcpus, disk_buses = int(conn.getMaxVcpus(None)), frozenset[str]()
    return Capabilities(
        live_memory=apis.memory,
        live_vcpus=apis.vcpus and (max_vcpus is None or max_vcpus > 1),
        live_nics=apis.devices,
        live_disks=apis.devices and bool(disk_buses & HOTPLUG_DISK_BUSES),
        max_vcpus=max_vcpus,
        migration=live_migration(host_caps),
        driver=driver,
        virt_types=frozenset(offered),
        console_log=driver == "QEMU",
    )


def container_capabilities(conn: libvirt.virConnect) -> Capabilities:
    """What the LXC driver (``conn``) can do to a running container: its row of
    the driver table; a container's console log is Corral's own file, and it
    has no disks to plug."""
    with libvirt_errors("read the container driver's capabilities"):
        host_caps = conn.getCapabilities()
    apis = DRIVER_LIVE_APIS["LXC"]
    return Capabilities(
        live_memory=apis.memory, live_vcpus=apis.vcpus, live_nics=apis.devices,
        live_disks=False, migration=live_migration(host_caps), driver="LXC",
        virt_types=frozenset({"lxc"}), console_log=True,
    )


def _domain_capabilities(conn: libvirt.virConnect, offered: tuple[str, ...]) -> str | None:
    """The domain capabilities XML for the virt type ``auto`` picks; None where the
    driver has none (the test driver)."""
    kind = "kvm" if "kvm" in offered else ("qemu" if "qemu" in offered else None)
    try:
        return str(conn.getDomainCapabilities(None, None, None, kind, 0))
    except libvirt.libvirtError as error:
        if error.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
            return None
        raise


def _vcpu_max(domain_caps: str) -> int | None:
    found = etree.fromstring(domain_caps.encode()).find("vcpu")
    value = found.get("max") if found is not None else None
    return int(value) if value and value.isdigit() else None


def _disk_buses(domain_caps: str) -> frozenset[str]:
    root = etree.fromstring(domain_caps.encode())
    disk = root.find("devices/disk")
    if disk is None or disk.get("supported") != "yes":
        return frozenset()
    return frozenset(v.text or "" for v in disk.iterfind("enum[@name='bus']/value"))


def live_migration(capabilities_xml: str) -> bool:
    """True when the host capabilities offer live migration."""
    root = etree.fromstring(capabilities_xml.encode())
    return root.find("host/migration_features/live") is not None


# How far apart the two samples of the node's CPU times are taken for CPU%:
# on its own, and at least, when taken around other work (100 Hz ticks over a
# quarter second are within a few per cent).
CPU_SAMPLE_S = 0.5
CPU_SAMPLE_MIN_S = 0.25
_BUSY = ("kernel", "user")


def node_stats(
    conn: libvirt.virConnect, service_host: str, sample_s: float = CPU_SAMPLE_S
) -> NodeStats:
    """The host's CPUs, memory use, uptime and CPU% from libvirt's node calls,
    the CPU% over ``sample_s`` seconds."""
    return node_stats_around(conn, service_host, lambda: time.sleep(sample_s), 0.0)[1]


# A CPU sample kept from an earlier reading measures the next one's CPU% when it
# is at least CPU_SAMPLE_MIN_S and at most this old.
CPU_SAMPLE_KEPT_S = 5.0
# How many of those samples are kept.
CPU_SAMPLES_KEPT = 4


class CpuSamples:
    """The last few CPU counters read from one service host, and when.

    A CPU% needs two samples some time apart. A caller that reads the host
    again and again (the server, about twice a second) measures each reading
    from a sample an earlier one took, instead of waiting the shortest
    sample time again: its readings come sooner, over an interval as recent.
    Several are kept because the one just before may be too young: readings
    begun every half second end a quarter second or so apart, and the one
    before that is then the newest old enough.
    """

    def __init__(self, kept: int = CPU_SAMPLES_KEPT) -> None:
        self._lock = threading.Lock()
        self._kept: deque[tuple[float, dict[str, int]]] = deque(maxlen=kept)

    def usable(self, now: float) -> dict[str, int] | None:
        """The newest kept counters old enough and not too old, else None."""
        with self._lock:
            kept = list(self._kept)
        for taken, counters in reversed(kept):
            if now - taken > CPU_SAMPLE_KEPT_S:
                return None
            if now - taken >= CPU_SAMPLE_MIN_S:
                return counters
        return None

    def keep(self, taken: float, counters: dict[str, int]) -> None:
        with self._lock:
            if not self._kept or taken > self._kept[-1][0]:
                self._kept.append((taken, counters))


def node_stats_around(
    conn: libvirt.virConnect,
    service_host: str,
    work: Callable[[], T],
    min_sample_s: float = CPU_SAMPLE_MIN_S,
    samples: CpuSamples | None = None,
) -> tuple[T, NodeStats]:
    """``work()``'s answer and the node's statistics, the CPU% sampled over the
    time ``work`` took (at least ``min_sample_s``), or, when ``samples`` keeps
    a usable earlier sample, since that one (no wait).

    ``virNodeGetCPUStats`` over all CPUs gives the time each state took since
    boot (kernel, user, idle, iowait), summed over the CPUs: that sum divided by
    the CPU count is the uptime (steal and interrupt time aside), and two
    samples apart give the busy share. ``virNodeGetMemoryStats`` gives total,
    free, buffers and cached; a driver without it (the test driver) gives only
    the total and free memory of ``virNodeGetInfo``/``GetFreeMemory``.
    """
    earlier = samples.usable(time.monotonic()) if samples is not None else None
    with libvirt_errors(f"read node statistics of {service_host}"):
        info = conn.getInfo()
        cpus, memory_mib = int(info[2]), int(info[1])
        first = earlier or conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS, 0)
    began = time.monotonic()
    answer = work()
    if earlier is None:
        time.sleep(max(0.0, min_sample_s - (time.monotonic() - began)))
    with libvirt_errors(f"read node statistics of {service_host}"):
        second = conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS, 0)
        taken = time.monotonic()
        memory_mib, used = _memory_mib(conn, memory_mib)
    if samples is not None:
        samples.keep(taken, second)
    total = sum(int(v) for v in second.values())
    busy = sum(int(second.get(k, 0)) - int(first.get(k, 0)) for k in _BUSY)
    spent = total - sum(int(v) for v in first.values())
    return answer, NodeStats(
        cpus=cpus,
        memory_mib=memory_mib,
        memory_used_mib=used,
        uptime_s=total / 1e9 / cpus if cpus and total else None,
        cpu_percent=round(100.0 * busy / spent, 1) if spent > 0 else None,
    )


def _memory_mib(conn: libvirt.virConnect, memory_mib: int) -> tuple[int, int]:
    """Total and used memory, both from the node's memory statistics where it has them."""
    try:
        stats = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)
    except libvirt.libvirtError as error:
        if error.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise
        return memory_mib, memory_mib - int(conn.getFreeMemory()) // (1024 * 1024)
    total = int(stats["total"])
    kib = total - sum(int(stats.get(k, 0)) for k in ("free", "buffers", "cached"))
    return total // 1024, kib // 1024

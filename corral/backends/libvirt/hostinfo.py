"""Facts about a service host, and the virt type a host can actually run.

Asked of libvirt, not assumed: the virt types are the domain types the
host's capabilities offer for hvm guests (``kvm`` appears only where KVM
works, see docs/architecture.md on masked ``/dev/kvm``). libvirt's test driver offers its
own type ``test`` and accepts QEMU domain XML, so it counts as a qemu host.
"""

from __future__ import annotations

import libvirt
from lxml import etree

from corral.backends.base import HostInfo
from corral.backends.libvirt.connection import libvirt_errors
from corral.errors import BackendError

RUNNABLE = ("kvm", "qemu")


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
            virt_type=resolve_virt_type("auto", offered, service_host)
            if any(k in RUNNABLE for k in offered)
            else "none",
        )

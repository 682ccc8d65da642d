"""The table of keys each stanza of a project file accepts.

One row per key: the shape of its statement (flag, one value, several values,
block), the converter of its value and the model field it fills. The builder
(:mod:`corral.model.build`) walks this table, so adding a simple key is one row
here; keys with structure (``network``, ``users``, ``wait`` ...) name a shape
and get a dedicated handler in the builder. The "did you mean" hint for an
unknown key is computed against these rows too.

Defaults for keys a host does not set: ``memory``, ``template`` and ``size``
come from the site config (``[defaults]``), ``service_host`` from the site's
default service host (``local``), the hypervisor kind from ``defaults.virt``
(``kvm``); everything else from the field defaults of
:mod:`corral.model.project` (1 vcpu, no disks, no users, ``wait auto 180``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from corral.images.passwords import checked_password
from corral.lang.resolve import MergePolicy
from corral.model import values
from corral.model.project import DiskType, Virt, WaitKind


class Shape(Enum):
    """How a key's statement must look."""

    FLAG = "flag"  # `lvm`
    VALUE = "value"  # `memory 128M`
    VALUES = "values"  # `nameserver 10.0.0.1 10.0.0.2`
    BLOCK = "block"  # `users { kyrre HASH }`
    LABELLED_BLOCK = "labelled block"  # `network eth0 { ... }`
    VALUES_OR_BLOCK = "values or block"  # `packages vim curl` / `packages { vim curl }`


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One accepted key: its shape, value converter and the model field it fills."""

    name: str
    shape: Shape
    help: str
    convert: Callable[[str], Any] | None = None
    field: str | None = None
    repeatable: bool = False


HYPERVISOR_FLAGS: tuple[str, ...] = tuple(v.value for v in Virt)
SWITCH_MODES: tuple[str, ...] = ("nat", "route", "bridge")
STANZAS: tuple[str, ...] = ("global", "host", "switch", "superclass", "group")
WAIT_KINDS: tuple[str, ...] = tuple(k.value for k in WaitKind)
DISK_TYPES: tuple[str, ...] = tuple(t.value for t in DiskType)


def _table(*specs: KeySpec) -> Mapping[str, KeySpec]:
    return {spec.name: spec for spec in specs}


def _hypervisor_specs() -> list[KeySpec]:
    return [KeySpec(flag, Shape.FLAG, f"run under {flag}") for flag in HYPERVISOR_FLAGS]


V = values
HOST_KEYS: Mapping[str, KeySpec] = _table(
    *_hypervisor_specs(),
    KeySpec("uuid", Shape.VALUE, "the domain's fixed UUID", V.uuid, "uuid"),
    KeySpec("template", Shape.VALUE, "registered template to clone", V.text_value, "template"),
    KeySpec("memory", Shape.VALUE, "memory size", V.size_mib, "memory_mib"),
    KeySpec("maxmem", Shape.VALUE, "memory ceiling for live resize", V.size_mib, "maxmem_mib"),
    KeySpec("vcpus", Shape.VALUE, "virtual CPUs", V.positive_int, "vcpus"),
    KeySpec("maxvcpus", Shape.VALUE, "vCPU ceiling for live resize", V.positive_int, "maxvcpus"),
    KeySpec("cpus", Shape.VALUE, "host CPUs to pin to (0-3)", V.cpuset, "cpus"),
    KeySpec("size", Shape.VALUE, "root disk size", V.size_mib, "size_mib"),
    KeySpec(
        "free_space", Shape.VALUE, "root disk = template size + this", V.size_mib, "free_space_mib"
    ),
    KeySpec("service_host", Shape.VALUE, "hypervisor machine", V.name, "service_host"),
    KeySpec("nameserver", Shape.VALUES, "DNS servers", V.ipv4, "nameservers", repeatable=True),
    KeySpec("network", Shape.LABELLED_BLOCK, "a NIC: network IF { switch|bridge; address }"),
    KeySpec("disk", Shape.LABELLED_BLOCK, "an extra disk: disk NAME { size | path; type }"),
    KeySpec("users", Shape.BLOCK, "users { NAME PASSWORD-HASH }"),
    KeySpec(
        "root_passwd", Shape.VALUE, "root password (plain or hash)", checked_password, "root_passwd"
    ),
    KeySpec("vncdisplay", Shape.VALUE, "VNC display number", V.non_negative_int, "vncdisplay"),
    KeySpec("vncpasswd", Shape.VALUE, "VNC password", V.text_value, "vncpasswd"),
    KeySpec("hvm", Shape.FLAG, "firmware boot from the disk (full virtualization)", field="hvm"),
    KeySpec("lvm", Shape.FLAG, "store the disks on logical volumes", field="lvm"),
    KeySpec("lvm_vg", Shape.VALUE, "LVM volume group for the disks", V.volume_group, "lvm_vg"),
    KeySpec("filepath", Shape.VALUE, "directory for the disks", V.directory, "filepath"),
    KeySpec("boot", Shape.VALUES, "boot order: hd cdrom network", V.boot_device, "boot"),
    KeySpec("autostart", Shape.VALUE, "start with the service host: yes|no", V.on_off, "autostart"),
    KeySpec("packages", Shape.VALUES_OR_BLOCK, "packages to install", field="packages"),
    KeySpec("runcmd", Shape.VALUES_OR_BLOCK, "commands run at first boot", field="runcmd"),
    KeySpec("wait", Shape.VALUES_OR_BLOCK, "readiness: wait KIND [TIMEOUT]"),
)

INTERFACE_KEYS: Mapping[str, KeySpec] = _table(
    KeySpec("switch", Shape.VALUE, "switch to attach to", V.name, "switch"),
    KeySpec("bridge", Shape.VALUE, "existing host bridge to attach to", V.bridge, "bridge"),
    KeySpec("address", Shape.VALUE, "dhcp, auto or IPv4", V.interface_address, "address"),
    KeySpec("netmask", Shape.VALUE, "netmask", V.netmask, "netmask"),
    KeySpec("gateway", Shape.VALUE, "default gateway", V.ipv4, "gateway"),
    KeySpec("mac", Shape.VALUE, "MAC address", V.mac, "mac"),
)

DISK_KEYS: Mapping[str, KeySpec] = _table(
    KeySpec("size", Shape.VALUE, "size of a new disk", V.size_mib, "size_mib"),
    KeySpec("type", Shape.VALUE, "|".join(DISK_TYPES), V.text_value, "type"),
    KeySpec("path", Shape.VALUE, "an existing image file to attach", V.image_file, "path"),
)

WAIT_KEYS: Mapping[str, KeySpec] = _table(
    KeySpec("kind", Shape.VALUE, "|".join(WAIT_KINDS), V.text_value, "kind"),
    KeySpec("timeout", Shape.VALUE, "seconds", V.positive_int, "timeout_s"),
)

SWITCH_KEYS: Mapping[str, KeySpec] = _table(
    *_hypervisor_specs(),
    KeySpec("address", Shape.VALUE, "host-side address A.B.C.D/P", V.network_cidr, "address"),
    KeySpec("nat", Shape.FLAG, "NAT to the outside"),
    KeySpec("route", Shape.FLAG, "route to the outside"),
    KeySpec("bridge", Shape.VALUE, "attach to an existing host bridge", V.text_value, "bridge"),
    KeySpec("dhcp", Shape.VALUE, "DHCP server on/off", V.on_off, "dhcp"),
    KeySpec("service_host", Shape.VALUE, "hypervisor machine", V.name, "service_host"),
)

GLOBAL_KEYS: Mapping[str, KeySpec] = _table(
    KeySpec("project", Shape.VALUE, "project name", V.name, "name"),
)

MERGE_POLICY = MergePolicy(
    exclusive={**{flag: "virt" for flag in HYPERVISOR_FLAGS}, **{m: "mode" for m in SWITCH_MODES}},
    atomic_blocks=frozenset({"packages", "runcmd", "wait", "service_hosts"}),
)

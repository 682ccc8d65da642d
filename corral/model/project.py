"""Frozen pydantic models of a resolved project.

These are what every stage after ``resolve`` consumes: the planner, the
backends, the seed builder, the CLI and the server. They hold values, never
source text; where a value came from lives in ``Host.origin`` so that later
checks (for example "template not registered") can still name a position.

``Project.contract()`` is the stable JSON shape of ``corral show --json``
(docs/architecture.md, "The resolved model as JSON"): keys may be added, never removed.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from corral.errors import CorralError


class Virt(StrEnum):
    """Virtualization kind chosen by a hypervisor flag in the host stanza."""

    KVM = "kvm"
    QEMU = "qemu"
    XEN = "xen"
    VMWARE = "vmware"
    UML = "uml"
    LXC = "lxc"


class SwitchMode(StrEnum):
    """How a switch reaches the outside: not at all, NAT, routed, or an existing bridge."""

    ISOLATED = "isolated"
    NAT = "nat"
    ROUTE = "route"
    BRIDGE = "bridge"


class WaitKind(StrEnum):
    """What "ready" means for a guest when ``up``/``start`` wait for it."""

    AUTO = "auto"  # the corral-ready/cloud-init console signal, else a DHCP lease
    DHCP = "dhcp"
    CONSOLE = "console"
    PING = "ping"
    SSH = "ssh"
    NONE = "none"


class PlacedBy(StrEnum):
    """Who decides a host's service host (docs/placement.md).

    Only ``file`` is a wish the plan enforces (a change moves the host, which
    needs ``--recreate``); a host placed by the site or the scheduler stays
    wherever it already runs, whatever the site or the capacity says later.
    """

    FILE = "file"  # service_host in the host, a superclass or autoenum's service_hosts
    SITE = "site"  # the site's [defaults] service_host, or its only service host
    SCHEDULER = "scheduler"  # chosen at plan time from what the service hosts report


PROVENANCE = frozenset({"origin", "superclasses", "groups"})
"""Host fields that say where its values came from, not what the host is."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Origin(_Frozen):
    """Source position of a stanza: ``file:line:column``."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Interface(_Frozen):
    """One NIC: ``network IF { switch S | bridge B; address dhcp|IP; netmask; gateway; mac }``.

    ``switch`` attaches it to a switch of the project, ``bridge`` to an
    existing bridge of its service host (Corral's nothing: neither created nor
    removed); with neither it is QEMU's user-mode network.
    """

    name: str
    switch: str | None = None
    bridge: str | None = None
    address: str | None = None  # "dhcp", an IPv4 address, or None (unconfigured)
    netmask: str | None = None
    gateway: str | None = None
    mac: str

    @property
    def is_static(self) -> bool:
        return self.address not in (None, "dhcp")

    @property
    def prefix_length(self) -> int | None:
        """CIDR prefix of ``netmask`` (``255.255.255.0`` -> 24), None when unset."""
        if not self.netmask:
            return None
        import ipaddress

        return ipaddress.IPv4Network(f"0.0.0.0/{self.netmask}").prefixlen


class DiskType(StrEnum):
    """What an extra disk is: a new volume of a format, or an existing image."""

    QCOW2 = "qcow2"  # a new, empty qcow2 volume (the default)
    RAW = "raw"  # a new raw volume; with ``path``, an existing file read as raw
    IMAGE = "image"  # an existing file attached as it is, its format probed


class Disk(_Frozen):
    """An extra disk beyond the root run copy.

    Either a new volume beside the run copy (``size_mib``; qcow2, or raw), or
    an existing image file on the service host (``path``), attached as it is
    and never created, resized or deleted by Corral. The guest finds either
    as ``/dev/disk/by-id/virtio-NAME`` (the name is the disk's serial number),
    whatever order the kernel enumerates disks in.
    """

    name: str
    size_mib: int | None = None
    type: DiskType = DiskType.QCOW2
    path: str | None = None

    @model_validator(mode="after")
    def _new_or_existing(self) -> Disk:
        if (self.size_mib is None) == (self.path is None):
            raise ValueError(f"disk {self.name}: give a size (a new disk) or a path, not both")
        if self.type is DiskType.IMAGE and self.path is None:
            raise ValueError(f"disk {self.name}: type image attaches an existing file: a path")
        return self

    @property
    def attached(self) -> bool:
        """True for an existing image file, which Corral only attaches."""
        return self.path is not None


class FileSpec(_Frozen):
    """A file written into the guest at first boot (cloud-init ``write_files``)."""

    path: str
    content: str
    owner: str = "root:root"
    permissions: str = "0644"


class WaitSpec(_Frozen):
    kind: WaitKind = WaitKind.AUTO
    timeout_s: int = 180


class Host(_Frozen):
    """A virtual machine of a project."""

    name: str
    uuid: str | None = None  # the domain's UUID; None: the one libvirt generates
    virt: Virt = Virt.KVM
    template: str | None = None
    memory_mib: int = 128
    maxmem_mib: int | None = None
    vcpus: int = 1
    maxvcpus: int | None = None
    cpus: str | None = None  # pinning, e.g. "0,1" or "0-3"
    size_mib: int | None = None
    free_space_mib: int | None = None
    # None until placed: the file does not say and the scheduler chooses at plan
    # time (corral/ops/placement.py); every host that reaches apply has one.
    service_host: str | None = None
    placed_by: PlacedBy = PlacedBy.FILE
    nameservers: tuple[str, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    disks: tuple[Disk, ...] = ()
    users: dict[str, str] = Field(default_factory=dict)  # name -> password hash
    root_passwd: str | None = None
    ssh_keys: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # user -> keys
    files: tuple[FileSpec, ...] = ()
    packages: tuple[str, ...] = ()
    runcmd: tuple[str, ...] = ()
    vncdisplay: int | None = None
    vncpasswd: str | None = None
    hvm: bool = False
    lvm: bool = False
    lvm_vg: str | None = None
    filepath: str | None = None
    boot: tuple[str, ...] = ()  # firmware boot order: hd, cdrom, network
    autostart: bool = False  # libvirt starts the domain when its daemon starts
    wait: WaitSpec = Field(default_factory=WaitSpec)
    plugins: dict[str, Any] = Field(default_factory=dict)  # plugin name -> its merged settings
    # Provenance, like origin: every superclass the host inherits, directly or
    # not, in the order they merge (a superclass's own superclasses first).
    superclasses: tuple[str, ...] = ()
    # Provenance too: the groups the host is a member of, in the order written.
    groups: tuple[str, ...] = ()
    origin: Origin | None = None

    @model_validator(mode="before")
    @classmethod
    def _unplaced_is_scheduled(cls, data: Any) -> Any:
        """A host given no service host is the scheduler's to place."""
        if isinstance(data, dict) and data.get("service_host") is None:
            data = {"placed_by": PlacedBy.SCHEDULER, **data}
        return data

    @model_validator(mode="after")
    def _file_names_a_service_host(self) -> Host:
        if self.service_host is None and self.placed_by is PlacedBy.FILE:
            raise ValueError(f"host {self.name}: placed by the file, yet no service_host")
        return self

    @property
    def placed_on(self) -> str:
        """The service host this host runs on. Planning places every host before
        anything acts on it, so an unplaced host here is a bug, not a user error."""
        if self.service_host is None:
            raise CorralError(f"host {self.name} has not been placed on a service host")
        return self.service_host

    def model_hash(self) -> str:
        """A short digest of everything that defines this host (not where it was
        written, nor who chose its service host: only where it is counts; nor
        which superclasses or groups its values came from: a guest is not rebuilt,
        nor its seed's instance id changed, because a file was refactored)."""
        data = self.recorded_dump(exclude={*PROVENANCE, "placed_by"})
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def recorded_dump(self, exclude: set[str]) -> dict[str, Any]:
        """The host as JSON for its hash and for the model recorded in libvirt, with
        the fields added since hosts were first deployed left out while unset: a
        host that does not use them hashes, and is recorded, as it was before."""
        return _without_unset_additions(self.model_dump(mode="json", exclude=exclude))

    def contract(self) -> dict[str, Any]:
        """The host in ``corral show --json``: like the recorded model, the keys
        added later appear only where the file uses them."""
        data = self.model_dump(mode="json", exclude={"origin", "name"})
        data["interfaces"] = [i.model_dump(mode="json") for i in self.interfaces]
        return _without_unset_additions(data)


# Fields added after hosts were deployed, with the value a host that does not
# use them has. They are left out of the hash while unset, so that adding them
# does not make every existing host's recorded hash stale (a plan that would
# update every host for nothing).
HOST_KEYS_ADDED_LATER: tuple[tuple[str, object], ...] = (("uuid", None),)
INTERFACE_KEYS_ADDED_LATER: tuple[tuple[str, object], ...] = (("bridge", None),)
DISK_KEYS_ADDED_LATER: tuple[tuple[str, object], ...] = (("type", "qcow2"), ("path", None))


def _without_unset_additions(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a host as JSON) without the later-added keys that hold their unset value."""
    _drop_unset(data, HOST_KEYS_ADDED_LATER)
    for interface in data.get("interfaces", ()):
        _drop_unset(interface, INTERFACE_KEYS_ADDED_LATER)
    for disk in data.get("disks", ()):
        _drop_unset(disk, DISK_KEYS_ADDED_LATER)
    return data


def _drop_unset(data: dict[str, Any], added_later: tuple[tuple[str, object], ...]) -> None:
    """Remove from ``data`` the keys of ``added_later`` that hold their unset value."""
    for key, unset in added_later:
        if key in data and data[key] == unset:
            del data[key]


class Switch(_Frozen):
    """A virtual LAN; ``address`` (``A.B.C.D/P``) gives the host side an IP and DHCP."""

    name: str
    mode: SwitchMode = SwitchMode.ISOLATED
    address: str | None = None
    bridge: str | None = None
    dhcp: bool = True
    service_host: str | None = None
    virt: Virt | None = None
    origin: Origin | None = None

    def model_hash(self) -> str:
        data = self.model_dump(mode="json", exclude={"origin"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class Project(_Frozen):
    """A named set of hosts and switches, resolved from one project file and its includes."""

    name: str
    hosts: dict[str, Host] = Field(default_factory=dict)
    switches: dict[str, Switch] = Field(default_factory=dict)
    # group name -> its members, in the order written (``group NAME { members ... }``)
    groups: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    source: str | None = None

    def group_members(self, group: str) -> tuple[str, ...] | None:
        """The members of ``group``, None when the project has no such group."""
        return self.groups.get(group)

    def contract(self) -> dict[str, Any]:
        """The stable JSON of ``corral show --json``."""
        return {
            "project": self.name,
            "hosts": {name: host.contract() for name, host in self.hosts.items()},
            "switches": {
                name: sw.model_dump(mode="json", exclude={"origin", "name"})
                for name, sw in self.switches.items()
            },
            "groups": {name: list(members) for name, members in self.groups.items()},
        }

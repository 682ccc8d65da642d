"""The backend interface: everything Corral asks of one service host.

A :class:`Backend` is bound to exactly one service host (a name from the site
config and the URI that reaches it) and owns its own connection, so the
operations layer can hold one backend per service host and drive several from
a small thread pool. Implementations never print or exit: every failure is a
:mod:`corral.errors` exception naming the object at fault.

Libvirt (or whatever the backend talks to) is the source of truth for what
exists. :meth:`Backend.observe` must recognise Corral's objects from the
hypervisor alone, through the metadata written when they were created, so that
planning and ``status`` work even when Corral's database is lost.

The values exchanged here are frozen dataclasses: they are safe to pass
between threads and cannot be edited behind a caller's back.
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, TypeVar

from corral.errors import BackendError
from corral.model import Host, Switch, Virt

T = TypeVar("T")


# --------------------------------------------------------------------------- templates


class TemplateLike(Protocol):
    """What a backend needs to know about a registered template.

    ``corral.images.registry.Template`` satisfies this; any object with these
    read-only attributes does. ``kind`` is ``"disk"`` (a bootable disk image),
    ``"direct"`` (kernel + initrd booted directly, with ``disk`` as root) or
    ``"rootfs"`` (a container's root filesystem: ``rootfs`` is its tar, and
    there is no disk or kernel).
    ``format`` and ``virtual_size`` (bytes) describe ``disk``; None without one.
    ``sha256`` maps a file's name (``disk.qcow2``, ``vmlinuz``...) to its digest:
    a remote service host's copy of the file is checked against it.
    """

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def disk(self) -> Path | str | None: ...
    @property
    def rootfs(self) -> Path | str | None: ...
    @property
    def kernel(self) -> Path | str | None: ...
    @property
    def initrd(self) -> Path | str | None: ...
    @property
    def format(self) -> str | None: ...
    @property
    def os(self) -> str | None: ...  # the system a builder installed, None if unknown
    @property
    def packages(self) -> Sequence[str]: ...  # the packages a builder added
    @property
    def virtual_size(self) -> int | None: ...
    @property
    def cmdline(self) -> str | None: ...
    @property
    def sha256(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class BootSpec:
    """How a domain boots, taken from its template.

    ``kind == "direct"`` boots ``kernel``/``initrd`` with ``cmdline``;
    ``kind == "disk"`` boots the first disk through the firmware. The sha256
    of kernel and initrd (as the registry recorded them) name their copies on
    a remote service host; None: hashed from the file when needed.
    """

    template: str
    kind: str = "disk"
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    kernel_sha256: str | None = None
    initrd_sha256: str | None = None

    @classmethod
    def from_template(cls, template: TemplateLike) -> BootSpec:
        """The boot facts of ``template``; paths become plain strings."""
        def digest(path: Path | str | None) -> str | None:
            return template.sha256.get(Path(path).name) if path else None

        return cls(
            template=template.name,
            kind=template.kind,
            kernel=str(template.kernel) if template.kernel else None,
            initrd=str(template.initrd) if template.initrd else None,
            cmdline=template.cmdline,
            kernel_sha256=digest(template.kernel),
            initrd_sha256=digest(template.initrd),
        )


# --------------------------------------------------------------------------- storage


@dataclass(frozen=True, slots=True)
class StoragePlace:
    """Where one host's volumes live on its service host.

    Neither field: the project's directory pool under the site's runs
    directory. ``directory`` (``filepath DIR``): a directory pool at
    ``DIR/PROJECT``, e.g. shared storage that live migration can use.
    ``volume_group`` (``lvm``): the run copy and extra disks on logical
    volumes of that group; the seed ISO stays in the project's pool.
    """

    directory: str | None = None
    volume_group: str | None = None

    @classmethod
    def of(cls, host: Host) -> StoragePlace:
        if host.lvm:
            return cls(volume_group=host.lvm_vg)
        return cls(directory=host.filepath)


@dataclass(frozen=True, slots=True)
class DiskSpec:
    """An extra disk as the domain sees it: a volume, found by the guest by ``serial``."""

    serial: str
    path: str
    format: str = "qcow2"
    block: bool = False  # a block device (a logical volume), not a file
    # The format was probed from the file (an attached image of ``type image``): a
    # domain that already has this file keeps the format it was first given, so a
    # guest that writes an image header into a raw file cannot change how it is read.
    probed: bool = False


@dataclass(frozen=True, slots=True)
class TemplateCopy:
    """A service host's own copy of one file of a site template (remote hosts only).

    ``digest`` is the first 16 hex digits of the file's sha256, from the
    copy's name; ``size`` is the bytes it holds.
    """

    service_host: str
    template: str
    file: str
    digest: str
    size: int
    path: str

    def as_json(self) -> dict[str, object]:
        return {"service_host": self.service_host, "template": self.template,
                "file": self.file, "digest": self.digest, "size": self.size,
                "path": self.path}


# --------------------------------------------------------------------------- domains


@dataclass(frozen=True, slots=True)
class NicSpec:
    """One guest NIC, resolved to what the hypervisor attaches it to.

    At most one of ``network`` (a libvirt network name, as returned by
    :meth:`Backend.ensure_network`) or ``bridge`` (an existing host bridge)
    is set; with neither, the NIC is QEMU's user-mode network (outbound NAT
    and DHCP inside QEMU itself), which is what an interface without a
    ``switch`` gets. ``name`` is the interface name in the model (``eth0``),
    kept for messages only: the MAC identifies the NIC.
    """

    mac: str
    network: str | None = None
    bridge: str | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.network is not None and self.bridge is not None:
            raise ValueError(f"NIC {self.name or self.mac}: give network or bridge, not both")

    @property
    def kind(self) -> str:
        """libvirt's interface type: ``network``, ``bridge`` or ``user``."""
        if self.network is not None:
            return "network"
        return "bridge" if self.bridge is not None else "user"


@dataclass(frozen=True, slots=True)
class DomainSpec:
    """Everything needed to define one host's domain on a service host.

    ``virt_type`` is the domain type to use (``kvm`` or ``qemu``, see
    :meth:`Backend.resolve_virt_type`); ``disk_path`` is the run copy from
    :meth:`Backend.create_run_copy`, ``seed_path`` the NoCloud ISO from
    :meth:`Backend.upload_seed`. ``model_hash`` is recorded in the domain's
    metadata so a later plan can tell whether the host changed.
    """

    project: str
    host: Host
    virt_type: str
    boot: BootSpec
    disk_path: str
    seed_path: str | None
    nics: tuple[NicSpec, ...]
    model_hash: str
    service_host: str = "local"
    disk_format: str = "qcow2"  # the run copy's format: raw on a logical volume
    disk_block: bool = False  # the run copy is a block device (a logical volume)
    disks: tuple[DiskSpec, ...] = ()  # extra disks, in the order the file gives them


class DomainState(StrEnum):
    """The states ``status`` reports (``absent`` is decided above the backend)."""

    RUNNING = "running"
    PAUSED = "paused"
    SUSPENDED = "suspended"  # shut off with a managed save image to restore from
    SHUTOFF = "shutoff"
    CRASHED = "crashed"
    UNKNOWN = "unknown"


class ShutdownOutcome(StrEnum):
    """How :meth:`Backend.shutdown` ended."""

    CLEAN = "clean"  # the guest powered off after the ACPI request
    FORCED = "forced"  # it did not within the timeout and was destroyed
    ALREADY_OFF = "already_off"


@dataclass(frozen=True, slots=True)
class StaticLease:
    """A fixed DHCP answer on a switch: this MAC gets this address and name."""

    mac: str
    ip: str
    hostname: str


# --------------------------------------------------------------------------- observations


@dataclass(frozen=True, slots=True)
class ObservedDomain:
    """A domain Corral created, recognised by its metadata.

    ``model`` is the host model recorded when the domain was defined (None
    when it cannot be read back, e.g. written by an incompatible version).
    """

    name: str
    project: str
    host: str
    model_hash: str
    template: str | None
    service_host: str
    state: DomainState
    model: Host | None = None


@dataclass(frozen=True, slots=True)
class ObservedNetwork:
    """A libvirt network Corral created for a switch."""

    name: str
    project: str
    switch: str
    model_hash: str
    active: bool
    bridge: str | None
    model: Switch | None = None
    # the site bridge it joins when its switch spans several service hosts
    site_bridge: str | None = None


@dataclass(frozen=True, slots=True)
class ObservedVolume:
    """A volume of a project: a host's run copy (``disk``), seed ISO (``seed``) or
    extra disk (``data``, named ``disk``)."""

    pool: str
    name: str
    path: str
    project: str
    host: str
    kind: str
    backing: str | None = None
    disk: str | None = None
    capacity: int | None = None  # bytes


@dataclass(frozen=True, slots=True)
class Observed:
    """Everything Corral created on one service host, as libvirt reports it."""

    service_host: str
    domains: tuple[ObservedDomain, ...] = ()
    networks: tuple[ObservedNetwork, ...] = ()
    volumes: tuple[ObservedVolume, ...] = ()

    def projects(self) -> frozenset[str]:
        """Names of the projects with at least one object here."""
        return frozenset(
            o.project for group in (self.domains, self.networks, self.volumes) for o in group
        )


@dataclass(frozen=True, slots=True)
class DomainStats:
    """One row of ``status``: a domain's state and resource use.

    ``uptime_s`` comes from the start time Corral records when it starts a
    domain (None when started by something else); ``cpu_percent`` is the
    average since that start over all vCPUs (None when unknown).
    """

    domain: str
    project: str
    host: str
    service_host: str
    state: DomainState
    memory_mib: int | None
    vcpus: int | None
    cpu_time_ns: int | None
    uptime_s: float | None
    cpu_percent: float | None


@dataclass(frozen=True, slots=True)
class HostInfo:
    """Facts about the service host, for ``corral info`` and virt type choice."""

    service_host: str
    uri: str
    hostname: str
    cpus: int
    memory_mib: int
    libvirt_version: str
    hypervisor: str
    hypervisor_version: str
    virt_types: tuple[str, ...]
    virt_type: str
    memory_free_mib: int | None = None  # what the host's kernel reports free now


@dataclass(frozen=True, slots=True)
class NodeStats:
    """A service host's own load, for its row in ``status`` (None: not known).

    ``uptime_s`` is the CPU time of all states summed over the CPUs, divided by
    their number (libvirt has no uptime call); ``cpu_percent`` the busy share of
    that time between two samples; ``memory_used_mib`` total less free, buffers
    and page cache.
    """

    cpus: int
    memory_mib: int
    memory_used_mib: int | None = None
    uptime_s: float | None = None
    cpu_percent: float | None = None



@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a service host can do to a running guest, asked of the host itself.

    The planner marks a change *live* only where the host says it can make it
    (memory balloon, vCPU hotplug within ``max_vcpus``, NIC and disk hotplug);
    anything else takes effect at the guest's next boot. ``driver`` is the
    hypervisor driver's name as the host reports it (``QEMU``, ``TEST``...);
    ``max_vcpus`` None means the host did not say.
    """

    live_memory: bool
    live_vcpus: bool
    live_nics: bool
    live_disks: bool = False
    max_vcpus: int | None = None
    migration: bool = False
    driver: str = ""
    virt_types: frozenset[str] = field(default_factory=frozenset)
    # console_output() can read what the serial console printed (from any client:
    # the log is a volume of the project's pool, read through libvirt)
    console_log: bool = True
    # What the host's container driver can do to a running container (lxc hosts),
    # None where the host runs none.
    containers: Capabilities | None = None

    def of(self, host: Host) -> Capabilities:
        """What this host can do to ``host``: a container's driver's, for an lxc host."""
        if host.virt is Virt.LXC and self.containers is not None:
            return self.containers
        return self

    def as_json(self) -> dict[str, object]:
        found: dict[str, object] = {
            "driver": self.driver, "live_memory": self.live_memory,
            "live_vcpus": self.live_vcpus, "live_nics": self.live_nics,
            "live_disks": self.live_disks, "max_vcpus": self.max_vcpus,
            "migration": self.migration, "virt_types": sorted(self.virt_types),
            "console_log": self.console_log,
        }
        if self.containers is not None:
            found["containers"] = self.containers.as_json()
        return found


@dataclass(frozen=True, slots=True)
class Survey:
    """What ``status`` needs of one service host, read in one pass.

    ``stats`` has a row per Corral domain; ``models`` maps a domain name to the
    host model recorded in its metadata (for its MACs and static addresses);
    ``lease_networks`` names the active networks those domains' NICs are on
    (whose DHCP leases give their addresses).
    """

    service_host: str
    stats: tuple[DomainStats, ...] = ()
    models: Mapping[str, Host | None] = field(default_factory=dict)
    lease_networks: tuple[str, ...] = ()


# --------------------------------------------------------------------------- the interface


class ConsoleStream(Protocol):
    """A domain's serial console, held open: bytes the guest prints, bytes it reads."""

    def read(self) -> bytes:
        """The next bytes the guest printed, waiting for them; ``b""`` once it ended."""

    def write(self, data: bytes) -> None:
        """Type ``data`` on the console."""

    def close(self) -> None:
        """Let go of the console (a ``read`` waiting returns)."""


class Backend(ABC):
    """The operations Corral needs from one service host.

    Every method acts on this backend's service host only. Names are the
    hypervisor's names (``PROJECT-HOST`` for domains, ``PROJECT-SWITCH`` for
    networks). Methods that create are idempotent: calling them again with the
    same input leaves things as they are and returns the same name or path.
    """

    def __init__(self, name: str, uri: str) -> None:
        self.name = name
        self.uri = uri

    # ---- facts
    @abstractmethod
    def capabilities(self) -> Capabilities:
        """Declared capabilities, asked of the host (not assumed)."""

    @abstractmethod
    def host_info(self) -> HostInfo:
        """Hostname, CPUs, memory, versions and the virt type ``auto`` resolves to."""

    def node_stats(self) -> NodeStats:
        """CPUs, memory use, uptime and CPU% of the service host itself.

        This default knows only what :meth:`host_info` says (no uptime, no
        CPU%); backends with node statistics override it.
        """
        info = self.host_info()
        used = None if info.memory_free_mib is None else info.memory_mib - info.memory_free_mib
        return NodeStats(info.cpus, info.memory_mib, used)

    def node_stats_around(self, work: Callable[[], T]) -> tuple[T, NodeStats]:
        """``work()``'s answer and :meth:`node_stats` sampled while it ran.

        A CPU% needs two readings some time apart; taking them around work that
        has to be done anyway (``status`` reads the domains meanwhile) costs no
        extra wait unless the work is quicker than the shortest sample. This
        default runs the work, then asks :meth:`node_stats`.
        """
        answer = work()
        return answer, self.node_stats()

    @abstractmethod
    def resolve_virt_type(self, requested: str) -> str:
        """The domain type for ``requested`` (``auto``, ``kvm``, ``qemu``, ``xen``...).

        ``auto`` means kvm where the host offers it, else qemu. A kind this
        host cannot run raises BackendError naming the kind and the host.
        """

    # ---- observation
    @abstractmethod
    def observe(self, project: str | None = None) -> Observed:
        """Every domain, network and volume Corral created here (or one project's)."""

    @abstractmethod
    def domain_stats(self, project: str | None = None) -> list[DomainStats]:
        """State and resource use of Corral's domains, from one bulk query."""

    def domain_states(self, project: str | None = None) -> dict[str, DomainState]:
        """Domain name -> state for Corral's domains; what readiness polls.

        Backends should override this with something cheaper than full stats.
        """
        return {row.domain: row.state for row in self.domain_stats(project)}

    def survey(self, project: str | None = None) -> Survey:
        """Stats, recorded models and networks for ``status``.

        This default asks :meth:`observe` and :meth:`domain_stats`; backends
        that can should answer from one bulk query instead.
        """
        seen = self.observe(project)
        models = {d.name: d.model for d in seen.domains}
        return Survey(self.name, tuple(self.domain_stats(project)), models,
                      tuple(n.name for n in seen.networks if n.active))

    @abstractmethod
    def leases(self, network_names: Iterable[str]) -> dict[str, list[str]]:
        """DHCP leases of the given networks: MAC (lower case) -> IP addresses."""

    # ---- networks
    @abstractmethod
    def ensure_network(
        self, project: str, switch: Switch, static_leases: Iterable[StaticLease] = (),
        *, site_bridge: str | None = None,
    ) -> str:
        """Define and start the switch's network (autostart off); return its name.

        Idempotent. A network whose recorded model (or site bridge) differs is
        redefined and, if it was active, restarted; static leases alone are
        updated live. With ``site_bridge`` the network joins that host bridge
        (``<forward mode='bridge'/>``): the switch spans several service hosts.
        """

    @abstractmethod
    def has_bridge(self, name: str) -> bool | None:
        """Whether this service host has the host bridge ``name`` (a site bridge
        a cross-host switch joins): True, False, or None when it cannot tell."""

    @abstractmethod
    def set_static_leases(self, network: str, leases: Iterable[StaticLease]) -> None:
        """Make the network's static DHCP entries exactly ``leases`` (live and config)."""

    @abstractmethod
    def remove_network(self, name: str) -> None:
        """Stop and undefine a network Corral created; absent is not an error."""

    # ---- storage
    @abstractmethod
    def template_disk(self, template: TemplateLike) -> str | None:
        """The path of ``template``'s disk as this service host reads it: None where
        it reads the site's registry itself, else its own copy, uploaded and
        checked on first use."""

    @abstractmethod
    def create_run_copy(
        self,
        project: str,
        host_name: str,
        template: TemplateLike,
        size_mib: int | None,
        place: StoragePlace = StoragePlace(),
    ) -> str:
        """Create (or find) the host's copy-on-write overlay on ``template``; return its path.

        The template is only ever read. An existing run copy on the same
        template is returned as it is (its data kept). ``size_mib`` None means
        the template's own size. On a volume group the run copy is a logical
        volume holding a raw copy of the template (LVM has no overlay on a file).
        A service host that does not see the site's registry bases the overlay
        on its own copy of the template, uploaded and checked on first use.
        """

    @abstractmethod
    def create_data_disk(
        self, project: str, host_name: str, disk: str, size_mib: int, place: StoragePlace,
        *, raw: bool = False,
    ) -> DiskSpec:
        """Create (or find) an empty extra disk of ``size_mib``, qcow2 or ``raw`` (always
        raw on a logical volume); an existing one is kept."""

    @abstractmethod
    def image_format(self, path: str) -> str | None:
        """The format (``raw``, ``qcow2`` ...) of the existing image file ``path`` on this
        service host, which a host attaches as it is; None when there is no such file.
        Only looks: the file is never created, changed or deleted."""

    @abstractmethod
    def delete_data_disk(self, project: str, host_name: str, disk: str) -> None:
        """Delete one extra disk's volume, wherever it lives (``upgrade --prune``)."""

    @abstractmethod
    def volume_groups(self) -> list[str]:
        """The LVM volume groups this service host has (for ``lvm`` hosts)."""

    @abstractmethod
    def upload_seed(
        self, project: str, host_name: str, iso: bytes, place: StoragePlace = StoragePlace()
    ) -> str:
        """Store the host's seed ISO (replaced when its bytes change); return its path."""

    @abstractmethod
    def delete_volumes(self, project: str, host_name: str) -> None:
        """Delete every volume of the host: run copy, seed and extra disks, in every pool.
        Only ever called by an explicit remove."""

    @abstractmethod
    def remove_pool(self, project: str) -> None:
        """Delete the project's pool and whatever volumes remain in it."""

    # ---- containers (``lxc`` hosts)
    def container_problem(self) -> str | None:
        """None when this service host runs containers, else why it cannot."""
        return f"service host '{self.name}' has no container driver"

    def create_container_root(self, project: str, host_name: str, template: TemplateLike) -> str:
        """Make (or find) the container's root tree from ``template``'s root
        filesystem; return its directory. The template is only ever read."""
        raise BackendError(f"cannot run lxc hosts: {self.container_problem()}")

    def write_container_seed(self, project: str, host_name: str, documents: dict[str, str]) -> str:
        """Write the container's NoCloud documents (name -> text); return their directory."""
        raise BackendError(f"cannot run lxc hosts: {self.container_problem()}")

    # ---- template copies (a remote service host's own copies of site templates)
    def template_copies(self) -> list[TemplateCopy]:
        """The template copies this service host holds; none where it uses the
        site's registry files directly (this machine)."""
        return []

    def check_template_copies(self, template: TemplateLike) -> list[str]:
        """Read back this service host's copies of ``template`` and compare their
        sha256 with the registry's: one message per copy that differs (deleted,
        so the next use uploads it again). Nothing to check where no copies are
        kept."""
        return []

    # ---- whole volumes (corral export / import)
    def read_volume(self, path: str, take: Callable[[bytes], None]) -> int:
        """Feed every byte of the volume at ``path`` (its file as it is, a qcow2
        overlay's own layer only) to ``take``, through the service host's API;
        the count read. A backend that cannot stream volumes says so."""
        from corral.errors import BackendError

        raise BackendError(f"service host {self.name}: its driver cannot read volumes")

    def receive_volume(
        self, project: str, host_name: str, place: StoragePlace, size: int,
        chunks: Iterator[bytes], *, disk: str | None = None,
    ) -> str:
        """Create the host's run copy (or, with ``disk``, that extra disk) in its
        pool for ``place`` from ``size`` bytes of ``chunks``, as the image they
        hold (a qcow2 overlay keeps the backing file its header names); its
        path. An existing volume of that name is refused, never overwritten."""
        from corral.errors import BackendError

        raise BackendError(f"service host {self.name}: its driver cannot write volumes")

    # ---- domains
    @abstractmethod
    def define_domain(self, spec: DomainSpec) -> str:
        """Define (or redefine) the host's domain; return its name.

        Redefining edits only the parts Corral manages, so elements an
        administrator added by hand survive.
        """

    @abstractmethod
    def undefine(self, name: str) -> None:
        """Undefine a domain, with its managed save image and NVRAM; absent is fine."""

    @abstractmethod
    def describe(self, name: str, *, inactive: bool = False) -> str:
        """The domain's XML as libvirt holds it: as it runs, or (``inactive``) its
        persistent definition."""

    # ---- lifecycle
    @abstractmethod
    def start(self, name: str) -> None:
        """Start a domain (restoring its managed save if any); records the start time."""

    @abstractmethod
    def shutdown(self, name: str, timeout_s: float) -> ShutdownOutcome:
        """ACPI power-off; destroy if still running after ``timeout_s``."""

    @abstractmethod
    def destroy(self, name: str) -> None:
        """Pull the plug; a domain already off is left alone."""

    @abstractmethod
    def reboot(self, name: str) -> None:
        """Ask the guest to reboot (ACPI)."""

    @abstractmethod
    def pause(self, name: str) -> None:
        """Freeze the vCPUs; memory stays allocated."""

    @abstractmethod
    def resume(self, name: str) -> None:
        """Unfreeze a paused domain."""

    @abstractmethod
    def suspend(self, name: str) -> None:
        """Save the domain's memory to disk and stop it (managed save)."""

    @abstractmethod
    def restore(self, name: str) -> None:
        """Start a suspended domain from its managed save image."""

    @abstractmethod
    def set_memory(self, name: str, mib: int, *, live: bool = True, config: bool = True) -> None:
        """Balloon to ``mib`` (live) and/or record it for the next boot (config)."""

    @abstractmethod
    def set_vcpus(self, name: str, count: int, *, live: bool = True, config: bool = True) -> None:
        """Set the active vCPU count, within the domain's maximum."""

    @abstractmethod
    def attach_interface(
        self, name: str, nic: NicSpec, *, live: bool = True, config: bool = True
    ) -> None:
        """Add a NIC; ``live`` only applies to a running domain."""

    @abstractmethod
    def detach_interface(
        self, name: str, mac: str, *, live: bool = True, config: bool = True
    ) -> None:
        """Remove the NIC with ``mac``; a NIC already gone is not an error."""

    @abstractmethod
    def attach_disk(self, name: str, disk: DiskSpec) -> None:
        """Hot-plug an extra disk into a running domain (its definition has it already)."""

    @abstractmethod
    def grow_disk(self, name: str, serial: str, size_mib: int) -> None:
        """Grow the running domain's extra disk ``serial`` to ``size_mib`` (never shrinks)."""

    @abstractmethod
    def detach_disk(self, name: str, serial: str) -> None:
        """Hot-unplug the extra disk with ``serial`` from a running domain; gone is fine."""

    # ---- migration (this backend is the source; ``target`` another service host's)
    @abstractmethod
    def shares_storage_with(self, target: Backend, project: str, place: StoragePlace) -> bool:
        """True when ``target`` sees the very volumes this host keeps at ``place`` (the
        same files at the same paths): then a move copies memory only, and the
        volumes must never be deleted on either side."""

    @abstractmethod
    def forget_pool(self, project: str, place: StoragePlace) -> None:
        """Undefine this host's pool for ``place`` without touching its directory or
        volumes: storage shared with another service host that now uses them."""

    @abstractmethod
    def stage_boot(self, project: str, boot: BootSpec, place: StoragePlace) -> BootSpec:
        """Whatever a domain booting as ``boot`` needs here besides its disks (the
        kernel and initrd copies of a direct-boot template, in the pool its run
        copy has at ``place``), made if missing."""

    @abstractmethod
    def migrate_live(
        self, name: str, target: Backend, *, address: str | None, copy_storage: bool
    ) -> None:
        """Move the running domain ``name`` to ``target`` without stopping it.

        Defined there afterwards and undefined here. ``address`` is where this
        host's hypervisor reaches the target's for the migration data (None: the
        name the target reports). ``copy_storage`` copies the disks' own layers
        into the volumes prepared on the target (their backing templates exist
        there); without it the storage is shared. Every volume, seed and boot
        file the domain uses must exist on the target, in pools of the same names.
        On failure the domain still runs here, and the error says so.
        """

    @abstractmethod
    def copy_volume(
        self, volume: ObservedVolume, target: Backend, project: str, place: StoragePlace
    ) -> str:
        """Copy one volume of a stopped domain into ``target``'s pool for ``place``,
        under the same name; its checksum there must equal the one read here. The
        copy's path on the target. The volume here is left as it is."""

    @abstractmethod
    def move_definition(self, name: str, target: Backend) -> None:
        """Define the stopped domain ``name`` on ``target`` as it is defined here
        (its volumes there already), then undefine it here."""

    # ---- console
    @abstractmethod
    def console_output(self, name: str) -> str:
        """What the domain's serial console printed so far."""

    @abstractmethod
    def console_command(self, name: str) -> list[str]:
        """An argv that attaches a terminal to the domain's console interactively."""

    def console_stream(self, name: str) -> ConsoleStream:
        """The domain's serial console as a byte stream (the server's websocket
        console); a backend without one says so."""
        from corral.errors import BackendError

        raise BackendError(f"service host of {name}: its driver has no console stream")

    def open_console(self, name: str) -> int:
        """Attach the caller's terminal to the domain's console until the user
        detaches; the attaching program's exit status."""
        return subprocess.call(self.console_command(name))


def leases_by_mac(entries: Iterable[Mapping[str, object]]) -> dict[str, list[str]]:
    """Group libvirt lease records (``mac``, ``ipaddr``) by lower-case MAC."""
    result: dict[str, list[str]] = {}
    for entry in entries:
        mac, ip = entry.get("mac"), entry.get("ipaddr")
        if isinstance(mac, str) and isinstance(ip, str):
            found = result.setdefault(mac.lower(), [])
            if ip not in found:
                found.append(ip)
    return result

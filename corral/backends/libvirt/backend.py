"""LibvirtBackend: the :class:`~corral.backends.base.Backend` for libvirt URIs.

One object per service host; it owns one shared, thread-safe connection and
delegates each group of operations to a small module (networks, storage,
lifecycle, observe, ...). It holds no other state.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import libvirt

from corral.backends.base import (
    Backend,
    BootSpec,
    Capabilities,
    DiskSpec,
    DomainSpec,
    DomainState,
    DomainStats,
    HostInfo,
    NicSpec,
    NodeStats,
    Observed,
    ObservedVolume,
    ShutdownOutcome,
    StaticLease,
    StoragePlace,
    Survey,
    T,
    TemplateCopy,
    TemplateLike,
)
from corral.backends.libvirt import (
    attached,
    console,
    containers,
    domain_xml,
    hostinfo,
    lifecycle,
    migration,
    names,
    networks,
    observe,
    pools,
    storage,
    templatestore,
    volumestream,
)
from corral.backends.libvirt import leases as lease_reader
from corral.backends.libvirt.connection import Connection, libvirt_errors
from corral.errors import BackendError, ConflictError
from corral.model import Host, Switch

DEFAULT_RUNS_DIR = "/var/lib/corral/runs"
DEFAULT_TEMPLATES_DIR = "/var/lib/corral/templates"


class LibvirtBackend(Backend):
    """A libvirt service host (``qemu:///system``, ``qemu+ssh://h/system``, ``test:///default``).

    ``runs_dir`` is where project pools keep run copies and seeds on that
    host (the site config's ``paths.runs``). ``templates_dir`` is where a
    remote service host keeps its copies of the site's templates (the service
    host's ``storage``, else the site's ``paths.templates``); this machine uses
    the registry's files directly and keeps no copies.
    """

    def __init__(
        self,
        name: str,
        uri: str,
        runs_dir: str | os.PathLike[str] = DEFAULT_RUNS_DIR,
        templates_dir: str | os.PathLike[str] = DEFAULT_TEMPLATES_DIR,
    ) -> None:
        super().__init__(name, uri)
        self.runs_dir = os.fspath(runs_dir)
        self.boot_copies = storage.BootCopies(service_host=name)
        self.cpu_samples = hostinfo.CpuSamples()  # a long-lived backend's CPU% needs no wait
        self.connection = Connection(name, uri)
        self.containers = containers.ContainerDriver(name, uri)
        self.template_store = (
            None if self.connection.is_local
            else templatestore.TemplateStore(name, os.fspath(templates_dir))
        )

    @property
    def conn(self) -> libvirt.virConnect:
        return self.connection.get()

    def close(self) -> None:
        self.connection.close()
        self.containers.close()

    def _connections(self) -> list[libvirt.virConnect]:
        """Every connection holding this host's domains: the hypervisor's, and the
        LXC driver's where this host runs containers."""
        sibling = self.containers.open_conn() if self.containers.uri else None
        return [self.conn] if sibling is None else [self.conn, sibling]

    def _holder(self, name: str) -> libvirt.virConnect:
        """The connection that holds domain ``name`` (a container's is the LXC
        driver's); the hypervisor's when neither does, for its error."""
        conn = self.conn
        if self.containers.uri is None:
            return conn
        with libvirt_errors(f"look up domain {name}"):
            if lifecycle.find(conn, name) is not None:
                return conn
            sibling = self.containers.open_conn()
            if sibling is not None and lifecycle.find(sibling, name) is not None:
                return sibling
        return conn

    def _container_dirs(self, conn: libvirt.virConnect, name: str) -> containers.ContainerDirs:
        domain = lifecycle.lookup(conn, name)
        with libvirt_errors(f"read the definition of {name}"):
            root = containers.root_of(domain)
        if root is None:
            raise BackendError(f"domain {name} is not a container Corral made (no root mount)")
        return containers.dirs_of_root(root)

    def _is_container_conn(self, conn: libvirt.virConnect) -> bool:
        return conn is not self.conn

    # ---- facts
    def capabilities(self) -> Capabilities:
        found = hostinfo.capabilities(self.conn, self.name)
        sibling = self.containers.open_conn() if self.containers.uri else None
        if sibling is None:
            return found
        return replace(found, containers=hostinfo.container_capabilities(sibling))

    def host_info(self) -> HostInfo:
        found = hostinfo.host_info(self.conn, self.name, self.uri)
        if self.containers.uri is None or self.containers.why_not() is not None:
            return found
        return replace(found, virt_types=(*found.virt_types, domain_xml.CONTAINER_TYPE))

    def node_stats(self) -> NodeStats:
        return hostinfo.node_stats(self.conn, self.name)

    def node_stats_around(self, work: Callable[[], T]) -> tuple[T, NodeStats]:
        return hostinfo.node_stats_around(self.conn, self.name, work, samples=self.cpu_samples)

    def resolve_virt_type(self, requested: str) -> str:
        if requested == domain_xml.CONTAINER_TYPE:
            reason = self.containers.why_not()
            if reason is not None:
                raise BackendError(f"cannot run lxc hosts: {reason}")
            return requested
        with libvirt_errors(f"read capabilities of {self.name}"):
            offered = hostinfo.virt_types(self.conn.getCapabilities())
        return hostinfo.resolve_virt_type(requested, offered, self.name)

    # ---- observation
    def observe(self, project: str | None = None) -> Observed:
        conn = self.conn
        domains = [d for c in self._connections() for d in observe.observe_domains(c, project)]
        return Observed(
            service_host=self.name,
            domains=tuple(sorted(domains, key=lambda d: d.name)),
            networks=observe.observe_networks(conn, project),
            volumes=observe.observe_volumes(conn, project),
        )

    def domain_stats(self, project: str | None = None) -> list[DomainStats]:
        rows = [r for c in self._connections() for r in observe.domain_stats(c, self.name, project)]
        return sorted(rows, key=lambda r: r.domain)

    def survey(self, project: str | None = None) -> Survey:
        """One bulk stats query for every domain (its metadata read once, its model
        parsed from it) and the networks their NICs are on: all that ``status``
        needs. Those networks are named after the project and switch of each
        NIC (as ``up`` names them) and kept when active: no network's
        definition is read."""
        now = time.time()
        with libvirt_errors("read domain statistics"):
            seen = [item for c in self._connections()
                    for item in observe._corral_domains(c, project, observe._STATS)]
            models = {item.name: item.mark.model() for item in seen}  # parsed once
            stats = tuple(sorted(
                (observe._row(item, self.name, now, models[item.name]) for item in seen),
                key=lambda r: r.domain,
            ))
        return Survey(self.name, stats, models, self._lease_networks(stats, models))

    def _lease_networks(
        self, stats: Iterable[DomainStats], models: Mapping[str, Host | None]
    ) -> tuple[str, ...]:
        wanted = {names.network_name(row.project, nic.switch) for row in stats
                  if (model := models.get(row.domain)) is not None
                  for nic in model.interfaces if nic.switch}
        if not wanted:
            return ()
        with libvirt_errors("list networks"):
            active = self.conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE)
        return tuple(sorted(wanted & {n.name() for n in active}))

    def domain_states(self, project: str | None = None) -> dict[str, DomainState]:
        states: dict[str, DomainState] = {}
        for conn in self._connections():
            states.update(observe.domain_states(conn, project))
        return states

    def leases(self, network_names: Iterable[str]) -> dict[str, list[str]]:
        with libvirt_errors("read DHCP leases"):
            return lease_reader.leases(self.conn, network_names)

    # ---- networks
    def ensure_network(
        self, project: str, switch: Switch, static_leases: Iterable[StaticLease] = (),
        *, site_bridge: str | None = None,
    ) -> str:
        return networks.ensure(self.conn, project, switch, static_leases, site_bridge)

    def has_bridge(self, name: str) -> bool | None:
        return networks.has_bridge(self.conn, name)

    def set_static_leases(self, network: str, leases: Iterable[StaticLease]) -> None:
        networks.set_static_leases(self.conn, network, leases)

    def remove_network(self, name: str) -> None:
        networks.remove(self.conn, name)

    # ---- storage
    def create_run_copy(
        self,
        project: str,
        host_name: str,
        template: TemplateLike,
        size_mib: int | None,
        place: StoragePlace = StoragePlace(),
    ) -> str:
        base = None if place.volume_group else self.template_disk(template)
        return storage.create_run_copy(
            self.conn, self.runs_dir, project, host_name, template, size_mib, place, base
        )

    def template_disk(self, template: TemplateLike) -> str | None:
        if self.template_store is None or not template.disk:
            return None
        disk = Path(template.disk)
        return templatestore.ensure_copy(
            self.conn, self.template_store,
            templatestore.template_file(template.name, disk, template.sha256.get(disk.name)),
        )

    def create_data_disk(
        self, project: str, host_name: str, disk: str, size_mib: int, place: StoragePlace,
        *, raw: bool = False,
    ) -> DiskSpec:
        return storage.create_data_disk(
            self.conn, self.runs_dir, project, host_name, disk, size_mib, place, raw=raw
        )

    def image_format(self, path: str) -> str | None:
        return attached.image_format(self.conn, path)

    def delete_data_disk(self, project: str, host_name: str, disk: str) -> None:
        storage.delete_data_disk(self.conn, project, host_name, disk)

    def volume_groups(self) -> list[str]:
        return pools.volume_groups(self.conn, self.name)

    def upload_seed(
        self, project: str, host_name: str, iso: bytes, place: StoragePlace = StoragePlace()
    ) -> str:
        return storage.upload_seed(self.conn, self.runs_dir, project, host_name, iso, place)

    def delete_volumes(self, project: str, host_name: str) -> None:
        self.boot_copies.forget(project)  # the last host takes the boot copies along
        storage.delete_volumes(self.conn, project, host_name)
        if self.containers.uri is not None:
            containers.delete(containers.dirs_of(self.runs_dir, project, host_name))

    def remove_pool(self, project: str) -> None:
        self.boot_copies.forget(project)
        storage.remove_pool(self.conn, project)

    # ---- containers
    def container_problem(self) -> str | None:
        return self.containers.why_not()

    def create_container_root(self, project: str, host_name: str, template: TemplateLike) -> str:
        self.containers.conn()  # refused, with the reason, where containers cannot run
        if not template.rootfs:
            raise BackendError(f"template {template.name} has no root filesystem for a container",
                               hint="build one: corral template build debian --rootfs")
        tar = Path(template.rootfs)
        digest = template.sha256.get(tar.name, "")
        dirs = containers.dirs_of(self.runs_dir, project, host_name)
        return str(containers.make_root(dirs, template.name, tar, digest))

    def write_container_seed(self, project: str, host_name: str, documents: dict[str, str]) -> str:
        return containers.write_seed(containers.dirs_of(self.runs_dir, project, host_name),
                                     documents)

    # ---- template copies
    def template_copies(self) -> list[TemplateCopy]:
        if self.template_store is None:
            return []
        return [
            TemplateCopy(self.name, c.template, c.file, c.digest, c.size, c.path)
            for c in templatestore.copies(self.conn, self.template_store)
        ]

    def check_template_copies(self, template: TemplateLike) -> list[str]:
        if self.template_store is None:
            return []
        files = [p for p in (template.disk, template.kernel, template.initrd) if p]
        problems = []
        for path in files:
            name = Path(path).name
            wanted = templatestore.template_file(template.name, path, template.sha256.get(name))
            found = templatestore.verify_copy(self.conn, self.template_store, wanted)
            if found:
                problems.append(found)
        return problems

    # ---- whole volumes
    def read_volume(self, path: str, take: Callable[[bytes], None]) -> int:
        return volumestream.read_volume(self.conn, path, take)

    def receive_volume(
        self, project: str, host_name: str, place: StoragePlace, size: int,
        chunks: Iterator[bytes], *, disk: str | None = None,
    ) -> str:
        return volumestream.receive_volume(
            self.conn, self.runs_dir, project, host_name, place, size, chunks, disk=disk
        )

    # ---- domains
    def define_domain(self, spec: DomainSpec) -> str:
        container = spec.virt_type == domain_xml.CONTAINER_TYPE
        conn = self.containers.conn() if container else self.conn
        return lifecycle.define(conn, spec, self.runs_dir, self.boot_copies, self.template_store)

    def undefine(self, name: str) -> None:
        lifecycle.undefine(self._holder(name), name)

    def describe(self, name: str, *, inactive: bool = False) -> str:
        return lifecycle.describe(self._holder(name), name, inactive=inactive)

    # ---- lifecycle
    def start(self, name: str) -> None:
        conn = self._holder(name)
        if self._is_container_conn(conn) and not lifecycle.is_running(lifecycle.lookup(conn, name)):
            containers.clear_console(self._container_dirs(conn, name))
        lifecycle.start(conn, name)

    def shutdown(self, name: str, timeout_s: float) -> ShutdownOutcome:
        return lifecycle.shutdown(self._holder(name), name, timeout_s)

    def destroy(self, name: str) -> None:
        lifecycle.destroy(self._holder(name), name)

    def reboot(self, name: str) -> None:
        lifecycle.reboot(self._holder(name), name)

    def pause(self, name: str) -> None:
        lifecycle.pause(self._holder(name), name)

    def resume(self, name: str) -> None:
        lifecycle.resume(self._holder(name), name)

    def suspend(self, name: str) -> None:
        conn = self._holder(name)
        if self._is_container_conn(conn):
            raise ConflictError(f"cannot suspend {name}: it is a container, and libvirt's LXC "
                                "driver keeps no saved state to restore", hint="pause it instead")
        lifecycle.suspend(conn, name)

    def restore(self, name: str) -> None:
        lifecycle.restore(self._holder(name), name)

    def set_memory(self, name: str, mib: int, *, live: bool = True, config: bool = True) -> None:
        lifecycle.set_memory(self._holder(name), name, mib, live, config)

    def set_vcpus(self, name: str, count: int, *, live: bool = True, config: bool = True) -> None:
        lifecycle.set_vcpus(self._holder(name), name, count, live, config)

    def attach_interface(
        self, name: str, nic: NicSpec, *, live: bool = True, config: bool = True
    ) -> None:
        lifecycle.attach_interface(self._holder(name), name, nic, live, config)

    def detach_interface(
        self, name: str, mac: str, *, live: bool = True, config: bool = True
    ) -> None:
        lifecycle.detach_interface(self._holder(name), name, mac, live, config)

    def attach_disk(self, name: str, disk: DiskSpec) -> None:
        lifecycle.attach_disk(self.conn, name, disk)

    def grow_disk(self, name: str, serial: str, size_mib: int) -> None:
        lifecycle.grow_disk(self.conn, name, serial, size_mib)

    def detach_disk(self, name: str, serial: str) -> None:
        lifecycle.detach_disk(self.conn, name, serial)

    # ---- migration
    def _peer(self, target: Backend) -> LibvirtBackend:
        """The target as a libvirt backend: both ends of a move must speak libvirt."""
        if not isinstance(target, LibvirtBackend):
            raise BackendError(
                f"cannot move a domain from {self.name} to {target.name}: "
                "both service hosts must be libvirt hosts"
            )
        return target

    def shares_storage_with(self, target: Backend, project: str, place: StoragePlace) -> bool:
        peer = self._peer(target)
        spec = pools.pool_for(project, self.runs_dir, place)
        if spec.xml != pools.pool_for(project, peer.runs_dir, place).xml:
            return False  # the pool is at another path there
        return migration.shares_storage(self.conn, peer.conn, spec)

    def forget_pool(self, project: str, place: StoragePlace) -> None:
        migration.forget_pool(self.conn, pools.pool_for(project, self.runs_dir, place))

    def stage_boot(self, project: str, boot: BootSpec, place: StoragePlace) -> BootSpec:
        def pool() -> libvirt.virStoragePool:
            if place.volume_group:  # beside a logical volume: the project's own pool
                return storage.ensure_pool(self.conn, project, self.runs_dir)
            return pools.ensure(self.conn, pools.pool_for(project, self.runs_dir, place))

        with libvirt_errors(f"stage the boot files of project {project} on {self.name}"):
            return lifecycle.protect_boot(
                self.conn, boot, self.boot_copies, self.template_store, pool
            )

    def migrate_live(
        self, name: str, target: Backend, *, address: str | None, copy_storage: bool
    ) -> None:
        peer = self._peer(target)
        migration.migrate_live(
            self.conn, peer.conn, name, address=address, copy_storage=copy_storage,
            source_host=self.name, target_host=peer.name,
        )

    def copy_volume(
        self, volume: ObservedVolume, target: Backend, project: str, place: StoragePlace
    ) -> str:
        peer = self._peer(target)
        spec = pools.pool_for(project, peer.runs_dir, place)
        return migration.copy_volume(self.conn, peer.conn, volume, spec)

    def move_definition(self, name: str, target: Backend) -> None:
        peer = self._peer(target)
        migration.move_definition(
            self.conn, peer.conn, name, source_host=self.name, target_host=peer.name
        )

    # ---- console
    def console_output(self, name: str) -> str:
        conn = self._holder(name)
        if self._is_container_conn(conn):
            return containers.read_console(self._container_dirs(conn, name))
        domain = lifecycle.lookup(conn, name)
        return console.console_output(conn, domain, local=self.connection.is_local)

    def console_stream(self, name: str) -> console.LibvirtConsole:
        conn = self._holder(name)
        domain = lifecycle.lookup(conn, name)
        return console.open_stream(conn, domain)

    def console_command(self, name: str) -> list[str]:
        conn = self._holder(name)
        lifecycle.lookup(conn, name)
        uri = self.containers.uri if self._is_container_conn(conn) else None
        return console.console_command(name, uri or self.uri)

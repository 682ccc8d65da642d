"""Per-domain operations by libvirt name: xman's set, plus define and undefine.

Each function takes the connection and a domain name and raises
NotFoundError for a missing domain, BackendError (with libvirt's reason) for
anything libvirt refuses. Operations that are already done (destroy a domain
that is off, resume one that runs) succeed quietly, so callers can retry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import libvirt
from lxml import etree

from corral.backends.base import (
    BootSpec,
    DiskSpec,
    DomainSpec,
    NicSpec,
    ShutdownOutcome,
    StoragePlace,
)
from corral.backends.libvirt import console, domain_xml, names, pools, storage, templatestore
from corral.backends.libvirt.connection import error_code, libvirt_errors
from corral.backends.libvirt.metadata import (
    NS,
    PREFIX,
    RUNTIME_NS,
    RUNTIME_PREFIX,
    domain_mark_element,
    parse_domain_mark_xml,
    runtime_xml,
    with_started,
    without_namespaces,
)
from corral.errors import BackendError, ConflictError, NotFoundError

_LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE
_CONFIG = libvirt.VIR_DOMAIN_AFFECT_CONFIG
_POLL_S = 0.2


def lookup(conn: libvirt.virConnect, name: str) -> libvirt.virDomain:
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
            raise NotFoundError(f"no domain '{name}' on this service host") from exc
        raise BackendError(f"cannot look up domain {name}: {exc.get_error_message()}") from exc


def find(conn: libvirt.virConnect, name: str) -> libvirt.virDomain | None:
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


def is_running(domain: libvirt.virDomain) -> bool:
    return bool(domain.isActive())


def _targets(domain: libvirt.virDomain, live: bool, config: bool) -> list[int]:
    """The AFFECT_* flags to apply a change with, one call each.

    ``live`` only applies to a running domain. Separate calls, because some
    drivers (libvirt's test driver) refuse LIVE|CONFIG together.
    """
    targets = ([_LIVE] if live and is_running(domain) else []) + ([_CONFIG] if config else [])
    if not targets:
        raise BackendError(f"domain {domain.name()} is not running: nothing to change live")
    return targets


# --------------------------------------------------------------------------- define


def define(
    conn: libvirt.virConnect,
    spec: DomainSpec,
    runs_dir: str,
    copies: storage.BootCopies,
    store: templatestore.TemplateStore | None = None,
) -> str:
    """Define or redefine; on redefine edit libvirt's own XML (see domain_xml).

    Templates stay untouched by libvirt's DAC relabelling: the run copy's
    backing chain is written with relabelling off, and where the connection
    relabels with DAC a direct-boot kernel and initrd are booted from copies
    in the run copy's pool (see :mod:`corral.backends.libvirt.storage`). On a
    remote service host (``store`` given) they are the host's own copies.
    """
    name = names.domain_name(spec.project, spec.host.name)
    with libvirt_errors(f"define domain {name}"):
        backing, log = None, ""
        if spec.virt_type != domain_xml.CONTAINER_TYPE:  # a container has no disks or log
            spec = _protect_templates(conn, spec, runs_dir, copies, store)
            chain = storage.backing_chain(conn, spec.disk_path)
            backing = (
                tuple(domain_xml.BackingFile(path, fmt) for path, fmt in chain)
                if chain is not None else None
            )
            log = console.log_path(runs_dir, spec.project, spec.host)
            # virtlogd creates the log file but not its directory: the seed's pool.
            place = StoragePlace(directory=StoragePlace.of(spec.host).directory)
            pools.ensure(conn, pools.pool_for(spec.project, runs_dir, place))
        domain = find(conn, name)
        if domain is None:
            root = domain_xml.build_domain(spec, console_log=log, backing=backing)
        else:
            flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
            root = etree.fromstring(domain.XMLDesc(flags).encode())
            _check_owner(root, name, spec)
            domain_xml.apply_spec(root, spec, console_log=log, backing=backing)
        defined = conn.defineXML(domain_xml.to_string(root))
        if domain is not None and is_running(defined):
            _refresh_live_mark(defined, spec)
        if bool(defined.autostart()) != spec.host.autostart:
            defined.setAutostart(int(spec.host.autostart))
    return name


def relabels_with_dac(conn: libvirt.virConnect) -> bool:
    """True when the host's security models include DAC (libvirt chowns files
    a guest uses); the test driver's model is not DAC."""
    caps = etree.fromstring(conn.getCapabilities().encode())
    return any(model.text == "dac" for model in caps.iterfind("host/secmodel/model"))


def _protect_templates(
    conn: libvirt.virConnect,
    spec: DomainSpec,
    runs_dir: str,
    copies: storage.BootCopies,
    store: templatestore.TemplateStore | None,
) -> DomainSpec:
    """``spec`` with its boot files made safe to use (see :func:`protect_boot`),
    the copies beside its run copy."""
    boot = protect_boot(
        conn, spec.boot, copies, store,
        lambda: storage.boot_pool(conn, spec.project, runs_dir, spec.disk_path),
    )
    return spec if boot is spec.boot else replace(spec, boot=boot)


def protect_boot(
    conn: libvirt.virConnect,
    boot: BootSpec,
    copies: storage.BootCopies,
    store: templatestore.TemplateStore | None,
    pool_of_copies: Callable[[], libvirt.virStoragePool],
) -> BootSpec:
    """``boot`` with a direct-boot kernel and initrd that exist on the service host
    and that libvirt may chown: the service host's template copies on a remote
    host (``store``), and copies of them in ``pool_of_copies()`` (the pool of the
    host's run copy) where libvirt relabels with DAC."""
    if boot.kind != "direct" or not (boot.kernel or boot.initrd):
        return boot
    dac = relabels_with_dac(conn)
    if store is None and not dac:
        return boot
    files = {
        role: templatestore.template_file(boot.template, path, digest)
        for role, path, digest in (("vmlinuz", boot.kernel, boot.kernel_sha256),
                                   ("initrd.img", boot.initrd, boot.initrd_sha256))
        if path
    }
    there = {
        role: templatestore.ensure_copy(conn, store, file) for role, file in files.items()
    } if store is not None else {}
    if dac:
        pool = pool_of_copies()
        staged = {
            role: storage.stage_boot_file(conn, pool, file, role, copies, there.get(role))
            for role, file in files.items()
        }
    else:
        staged = there
    return replace(boot, kernel=staged.get("vmlinuz"), initrd=staged.get("initrd.img"))


def _check_owner(root: etree._Element, name: str, spec: DomainSpec) -> None:
    """Refuse to take over a domain that is not this project's host.

    ``PROJECT-HOST`` names can collide (project ``a``, host ``b-c`` and project
    ``a-b``, host ``c``), and a hand-made domain may already use the name.
    """
    mark = domain_xml.existing_mark(root)
    if mark is None or (mark.project, mark.host) != (spec.project, spec.host.name):
        owner = f"host {mark.host} of project {mark.project}" if mark else "not Corral's"
        raise ConflictError(
            f"domain {name} already exists and is {owner}",
            hint="rename the host or the project",
        )


def _refresh_live_mark(domain: libvirt.virDomain, spec: DomainSpec) -> None:
    """Keep a running domain's live metadata in step with its new definition
    (keeping the start time the live mark carries)."""
    live = parse_domain_mark_xml(_live_mark_xml(domain) or "")
    mark = replace(domain_xml.mark_for(spec), started=live.started if live else None)
    domain.setMetadata(
        libvirt.VIR_DOMAIN_METADATA_ELEMENT,
        without_namespaces(domain_mark_element(mark)),
        PREFIX,
        NS,
        _LIVE,
    )


def undefine(conn: libvirt.virConnect, name: str) -> None:
    domain = find(conn, name)
    if domain is None:
        return
    with libvirt_errors(f"undefine domain {name}"):
        if is_running(domain):
            domain.destroy()
        if domain.hasManagedSaveImage(0):
            domain.managedSaveRemove(0)
        # Drivers without NVRAM (libvirt's test driver) refuse that flag, and
        # drivers without snapshots (LXC) the other one too.
        cleanup = libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        for flags in (cleanup | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM, cleanup, 0):
            try:
                domain.undefineFlags(flags)
                return
            except libvirt.libvirtError as exc:
                if flags == 0 or error_code(exc) not in (
                    libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT
                ):
                    raise


def describe(conn: libvirt.virConnect, name: str, *, inactive: bool = False) -> str:
    """The domain's XML: as it runs, or (``inactive``) its persistent definition."""
    domain = lookup(conn, name)
    with libvirt_errors(f"describe domain {name}"):
        return str(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0))


# --------------------------------------------------------------------------- power


def start(conn: libvirt.virConnect, name: str) -> None:
    """Start (from the managed save image if there is one); record the start time."""
    domain = lookup(conn, name)
    if is_running(domain):
        return
    with libvirt_errors(f"start domain {name}"):
        domain.create()
        record_start(domain, time.time())


def record_start(domain: libvirt.virDomain, started: float) -> None:
    """Write the start time into the live definition (gone when the domain stops).

    It goes into the live Corral mark, so ``status`` reads mark and start time
    in one call per domain; a domain without a mark gets the runtime element.
    """
    marked = with_started(_live_mark_xml(domain) or "", started)
    if marked is not None:
        domain.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, marked, PREFIX, NS, _LIVE)
        return
    domain.setMetadata(
        libvirt.VIR_DOMAIN_METADATA_ELEMENT, runtime_xml(started), RUNTIME_PREFIX, RUNTIME_NS, _LIVE
    )


def _live_mark_xml(domain: libvirt.virDomain) -> str | None:
    try:
        return str(domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS, _LIVE))
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
            return None
        raise


def shutdown(
    conn: libvirt.virConnect,
    name: str,
    timeout_s: float,
) -> ShutdownOutcome:
    """ACPI power-off, then destroy after ``timeout_s``; say how it ended."""
    domain = lookup(conn, name)
    if not is_running(domain):
        return ShutdownOutcome.ALREADY_OFF
    with libvirt_errors(f"shut down domain {name}"):
        try:
            domain.shutdown()
        except libvirt.libvirtError as exc:
            if is_running(domain):
                raise
            del exc  # it stopped between the check and the request
            return ShutdownOutcome.CLEAN
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not is_running(domain):
                return ShutdownOutcome.CLEAN
            time.sleep(_POLL_S)
        if not is_running(domain):
            return ShutdownOutcome.CLEAN
        _destroy(domain)
        return ShutdownOutcome.FORCED


def _destroy(domain: libvirt.virDomain) -> None:
    try:
        domain.destroy()
    except libvirt.libvirtError as exc:
        if error_code(exc) != libvirt.VIR_ERR_OPERATION_INVALID:  # already off
            raise


def destroy(conn: libvirt.virConnect, name: str) -> None:
    domain = lookup(conn, name)
    with libvirt_errors(f"destroy domain {name}"):
        if is_running(domain):
            _destroy(domain)


def reboot(conn: libvirt.virConnect, name: str) -> None:
    domain = lookup(conn, name)
    with libvirt_errors(f"reboot domain {name}"):
        domain.reboot(0)


def pause(conn: libvirt.virConnect, name: str) -> None:
    domain = lookup(conn, name)
    with libvirt_errors(f"pause domain {name}"):
        if domain.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
            domain.suspend()


def resume(conn: libvirt.virConnect, name: str) -> None:
    """Unfreeze a paused domain.

    A domain libvirt is still starting (QEMU launched paused, reason "starting
    up") is left alone: libvirtd resumes it itself a moment later, also when
    the client that asked for the start was killed meanwhile.
    """
    domain = lookup(conn, name)
    with libvirt_errors(f"resume domain {name}"):
        state, reason = domain.state()
        if state != libvirt.VIR_DOMAIN_PAUSED or reason == libvirt.VIR_DOMAIN_PAUSED_STARTING_UP:
            return
        try:
            domain.resume()
        except libvirt.libvirtError:
            if domain.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
                return  # it started running on its own between our look and our call
            raise


def suspend(conn: libvirt.virConnect, name: str) -> None:
    """Managed save: memory to disk, domain off; ``restore`` or ``start`` brings it back."""
    domain = lookup(conn, name)
    with libvirt_errors(f"suspend domain {name}"):
        if is_running(domain):
            domain.managedSave(0)


def restore(conn: libvirt.virConnect, name: str) -> None:
    domain = lookup(conn, name)
    if is_running(domain):
        return
    if not domain.hasManagedSaveImage(0):
        raise BackendError(
            f"domain {name} has no saved state to restore", hint="use start to boot it"
        )
    start(conn, name)


# --------------------------------------------------------------------------- resources


def set_memory(conn: libvirt.virConnect, name: str, mib: int, live: bool, config: bool) -> None:
    domain = lookup(conn, name)
    with libvirt_errors(f"set memory of {name} to {mib} MiB"):
        maximum_kib = domain.maxMemory() if is_running(domain) else None
        if maximum_kib is not None and live and mib * 1024 > maximum_kib:
            raise BackendError(
                f"cannot set memory of {name} to {mib} MiB live: its maximum is "
                f"{maximum_kib // 1024} MiB",
                hint="raise maxmem and restart the host",
            )
        for flags in _targets(domain, live, config):
            domain.setMemoryFlags(mib * 1024, flags)


def set_vcpus(conn: libvirt.virConnect, name: str, count: int, live: bool, config: bool) -> None:
    domain = lookup(conn, name)
    with libvirt_errors(f"set vCPUs of {name} to {count}"):
        for flags in _targets(domain, live, config):
            domain.setVcpusFlags(count, flags)


def attach_interface(
    conn: libvirt.virConnect, name: str, nic: NicSpec, live: bool, config: bool
) -> None:
    domain = lookup(conn, name)
    xml = etree.tostring(domain_xml.nic_element(nic), encoding="unicode")
    with libvirt_errors(f"attach NIC {nic.mac} to {name}"):
        for flags in _targets(domain, live, config):
            domain.attachDeviceFlags(xml, flags)


def detach_interface(
    conn: libvirt.virConnect, name: str, mac: str, live: bool, config: bool
) -> None:
    domain = lookup(conn, name)
    mac = mac.lower()
    with libvirt_errors(f"detach NIC {mac} from {name}"):
        for flag in _targets(domain, live, config):
            xml_flags = 0 if flag == _LIVE else libvirt.VIR_DOMAIN_XML_INACTIVE
            root = etree.fromstring(domain.XMLDesc(xml_flags).encode())
            for interface in root.iterfind("devices/interface"):
                mac_el = interface.find("mac")
                if mac_el is not None and mac_el.get("address", "").lower() == mac:
                    domain.detachDeviceFlags(etree.tostring(interface, encoding="unicode"), flag)


def _disk_with_serial(domain: libvirt.virDomain, serial: str, flags: int) -> str | None:
    root = etree.fromstring(domain.XMLDesc(flags).encode())
    for disk in root.iterfind("devices/disk"):
        if disk.findtext("serial") == serial:
            return etree.tostring(disk, encoding="unicode")
    return None


def attach_disk(conn: libvirt.virConnect, name: str, disk: DiskSpec) -> None:
    """Plug the definition's disk ``disk.serial`` into the running domain, with the
    target the definition gave it (so live and next boot agree)."""
    domain = lookup(conn, name)
    with libvirt_errors(f"attach disk {disk.serial} to {name}"):
        if not is_running(domain) or _disk_with_serial(domain, disk.serial, 0) is not None:
            return
        xml = _disk_with_serial(domain, disk.serial, libvirt.VIR_DOMAIN_XML_INACTIVE)
        if xml is None:
            raise BackendError(f"domain {name} has no disk {disk.serial} in its definition")
        # The definition may give it the PCI slot of a disk the guest has not let go
        # of yet; live, QEMU takes any free slot (the definition's applies at next boot).
        element = etree.fromstring(xml.encode())
        for address in element.findall("address"):
            element.remove(address)
        domain.attachDeviceFlags(etree.tostring(element, encoding="unicode"), _LIVE)


def detach_disk(conn: libvirt.virConnect, name: str, serial: str) -> None:
    """Unplug the disk ``serial`` from the running domain (the guest completes it)."""
    domain = lookup(conn, name)
    with libvirt_errors(f"detach disk {serial} from {name}"):
        if not is_running(domain):
            return
        xml = _disk_with_serial(domain, serial, 0)
        if xml is not None:
            domain.detachDeviceFlags(xml, _LIVE)


def grow_disk(conn: libvirt.virConnect, name: str, serial: str, size_mib: int) -> None:
    """Resize a running domain's extra disk through QEMU (the guest sees it at once)."""
    domain = lookup(conn, name)
    with libvirt_errors(f"grow disk {serial} of {name} to {size_mib} MiB"):
        xml = _disk_with_serial(domain, serial, 0)
        if xml is None or not is_running(domain):
            return
        target = etree.fromstring(xml.encode()).find("target")
        if target is None:
            return
        size = size_mib * 1024 * 1024
        if domain.blockInfo(target.get("dev", ""), 0)[0] < size:
            domain.blockResize(target.get("dev", ""), size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)

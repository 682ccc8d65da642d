"""Domain XML for a host, built and edited with lxml.

:func:`build_domain` makes a new document; :func:`apply_spec` edits an
existing one (libvirt's own XML of the domain) so that every element Corral
manages matches the spec while everything else, e.g. a device an
administrator added by hand, stays as it is. Corral manages:

* the domain type, ``<name>``, ``<uuid>`` when the host gives one, and its
  ``<corral:corral>`` metadata element;
* ``<memory>`` (= maxmem, or memory), ``<currentMemory>`` (= memory),
  ``<vcpu current=vcpus cpuset=cpus>maxvcpus</vcpu>``;
* ``<os>``: ``<type>hvm</type>``, and kernel/initrd/cmdline for direct-boot
  templates (removed for disk templates, which boot from ``vda``);
* the ``acpi`` and ``apic`` features (ACPI is what makes ``shutdown`` work);
* disks ``vda`` (the run copy, qcow2, virtio; a raw block device on LVM) and
  ``vdb`` (the seed ISO, raw, virtio, read-only);
* the run copy's backing chain, written out (``<backingStore>``, ended by an
  empty one) when known, each template file in it carrying
  ``<seclabel model='dac' relabel='no'/>``: libvirt then neither probes the
  chain nor chowns the templates (its DAC driver would otherwise chown every
  backing file to the QEMU user while the guest runs, and leave
  ``trusted.libvirt.security.*`` xattrs on them);
* extra disks (``disk NAME { size }``, or an existing image ``disk NAME { path }``),
  found by their ``<serial>`` (the disk's name, so the guest sees
  ``/dev/disk/by-id/virtio-NAME``): each keeps the ``vdX`` target it was first
  given, a new one takes the first free target, and one that Corral added and
  the file no longer has is taken out; a probed image keeps the format it was
  first attached with while its file stays the same;
* the boot order (``boot hd network``; ``hd`` when unset), and the OS type
  (``xen`` for a paravirtualised Xen guest, else ``hvm``);
* NICs whose MAC is in the spec or was recorded in the metadata as Corral's
  (edited in place, so libvirt's PCI address for them stays put);
* the serial console on a pty logging to ``HOST-console.log`` in the directory of
  the pool that holds the seed (append off, so the file holds the current boot;
  see :mod:`corral.backends.libvirt.console` for why there);
* the VNC display when the host asks for one (and its removal only if Corral
  added it);
* a virtio memory balloon (live memory changes).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from corral.backends.base import DiskSpec, DomainSpec, NicSpec
from corral.backends.libvirt import containers, names
from corral.backends.libvirt.metadata import (
    NS,
    DomainMark,
    domain_mark_element,
    host_model_json,
    parse_domain_mark,
    q,
)

# A container's domain type and init, and where its seed and console log
# directories are mounted in it (corral.backends.libvirt.containers).
CONTAINER_TYPE = "lxc"
CONTAINER_INIT = "/sbin/init"
CONTAINER_SEED_TARGET = "/var/lib/cloud/seed/nocloud"
CONTAINER_CONSOLE_TARGET = "/var/log/corral"
SEED_DEV = "vdb"
DISK_DEV = "vda"
VNC_BASE_PORT = 5900


@dataclass(frozen=True, slots=True)
class BackingFile:
    """One read-only file under a run copy (a template disk) and its format."""

    path: str
    format: str


def mark_for(spec: DomainSpec) -> DomainMark:
    """The metadata Corral records for ``spec``."""
    host = spec.host
    return DomainMark(
        project=spec.project,
        host=host.name,
        model_hash=spec.model_hash,
        template=spec.boot.template,
        service_host=spec.service_host,
        nic_macs=tuple(n.mac.lower() for n in spec.nics),
        manages_vnc=_wants_vnc(spec),
        model_json=host_model_json(host),
        disk_serials=tuple(d.serial for d in spec.disks),
    )


def build_domain(
    spec: DomainSpec, *, console_log: str, backing: tuple[BackingFile, ...] | None = None
) -> etree._Element:
    """A new ``<domain>`` document for ``spec`` (``console_log``, ``backing``: see
    :func:`apply_spec`)."""
    root = etree.Element("domain")
    return apply_spec(root, spec, console_log=console_log, backing=backing)


def existing_mark(root: etree._Element) -> DomainMark | None:
    """The Corral mark already in a domain document, if any."""
    found = root.find(f"metadata/{q('corral')}")
    return parse_domain_mark(found) if found is not None else None


def apply_spec(
    root: etree._Element,
    spec: DomainSpec,
    *,
    console_log: str,
    backing: tuple[BackingFile, ...] | None = None,
) -> etree._Element:
    """Make the parts of ``root`` that Corral manages match ``spec``; return ``root``.

    ``console_log`` is the file the serial console logs to
    (:func:`corral.backends.libvirt.console.log_path`).

    ``backing`` is the run copy's backing chain, top first (the template's
    disk): written out with relabelling off. None leaves the chain to libvirt.
    """
    previous = existing_mark(root)
    root.set("type", spec.virt_type)
    _child(root, "name", first=True).text = names.domain_name(spec.project, spec.host.name)
    _set_uuid(root, spec)
    _set_metadata(root, spec)
    _set_memory(root, spec)
    _set_vcpu(root, spec)
    if spec.virt_type == CONTAINER_TYPE:
        return _apply_container(root, spec, previous)
    _set_os(root, spec)
    features = _child(root, "features")
    _child(features, "acpi")
    _child(features, "apic")
    devices = _child(root, "devices")
    _set_disk(
        devices, DISK_DEV, spec.disk_path, spec.disk_format, readonly=False, block=spec.disk_block
    )
    _set_backing_chain(devices, DISK_DEV, backing)
    if spec.seed_path:
        _set_disk(devices, SEED_DEV, spec.seed_path, "raw", readonly=True)
    else:
        _remove_seed(devices)
    _set_data_disks(devices, spec.disks, previous.disk_serials if previous else ())
    _set_nics(devices, spec.nics, previous.nic_macs if previous else ())
    _set_console(devices, console_log)
    _set_vnc(devices, spec, previous.manages_vnc if previous else False)
    balloon = _child(devices, "memballoon")
    balloon.set("model", "virtio")
    return root


def _apply_container(
    root: etree._Element, spec: DomainSpec, previous: DomainMark | None
) -> etree._Element:
    """The rest of a container's document: it runs its root's ``/sbin/init`` on the
    host's kernel, its root, seed and console log are directories of this machine
    mounted into it (:mod:`corral.backends.libvirt.containers`), and its NICs are
    named inside as the host's interfaces are. No disks, firmware or balloon."""
    os_el = _child(root, "os")
    for old in list(os_el):
        os_el.remove(old)
    etree.SubElement(os_el, "type").text = "exe"
    etree.SubElement(os_el, "init").text = CONTAINER_INIT
    devices = _child(root, "devices")
    for old in devices.findall("filesystem"):
        devices.remove(old)
    seed_dir = spec.seed_path or ""
    console_dir = str(containers.dirs_of_root(spec.disk_path).console)
    mounts = ((spec.disk_path, "/", False), (seed_dir, CONTAINER_SEED_TARGET, True),
              (console_dir, CONTAINER_CONSOLE_TARGET, False))
    for index, (source, target, readonly) in enumerate(mounts):
        element = etree.Element("filesystem", type="mount", accessmode="passthrough")
        etree.SubElement(element, "source", dir=source)
        etree.SubElement(element, "target", dir=target)
        if readonly:
            etree.SubElement(element, "readonly")
        devices.insert(index, element)
    _set_nics(devices, spec.nics, previous.nic_macs if previous else (), container=True)
    if devices.find("console") is None:
        etree.SubElement(devices, "console", type="pty")
    return root


def to_string(root: etree._Element) -> str:
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="unicode", pretty_print=True)


# --------------------------------------------------------------------------- parts


def _child(parent: etree._Element, tag: str, *, first: bool = False) -> etree._Element:
    """The first ``tag`` child of ``parent``, created (at the end, or first) if missing."""
    found = parent.find(tag)
    if found is None:
        found = etree.Element(tag)
        if first:
            parent.insert(0, found)
        else:
            parent.append(found)
    return found


def _drop_attribute(element: etree._Element, key: str) -> None:
    """Remove attribute ``key`` of ``element`` when it has one."""
    if key in element.attrib:
        del element.attrib[key]


def _set_uuid(root: etree._Element, spec: DomainSpec) -> None:
    """The host's ``uuid`` when it gives one; otherwise whatever the document has
    (libvirt's generated UUID on a redefinition, none yet on a new domain)."""
    if spec.host.uuid is None:
        return
    element = root.find("uuid")
    if element is None:
        element = etree.Element("uuid")
        _child(root, "name", first=True).addnext(element)
    element.text = spec.host.uuid


def _set_metadata(root: etree._Element, spec: DomainSpec) -> None:
    metadata = root.find("metadata")
    if metadata is None:
        metadata = etree.Element("metadata")
        _child(root, "name", first=True).addnext(metadata)
    for old in metadata.findall(q("corral")):
        metadata.remove(old)
    metadata.append(domain_mark_element(mark_for(spec)))
    etree.cleanup_namespaces(metadata, top_nsmap={"corral": NS})


def _set_memory(root: etree._Element, spec: DomainSpec) -> None:
    host = spec.host
    ceiling = max(host.maxmem_mib or host.memory_mib, host.memory_mib)
    for tag, mib in (("memory", ceiling), ("currentMemory", host.memory_mib)):
        element = _child(root, tag)
        element.attrib.clear()
        element.set("unit", "KiB")
        element.text = str(mib * 1024)


def _set_vcpu(root: etree._Element, spec: DomainSpec) -> None:
    host = spec.host
    maximum = max(host.maxvcpus or host.vcpus, host.vcpus)
    vcpu = _child(root, "vcpu")
    vcpu.set("placement", "static")
    vcpu.text = str(maximum)
    if maximum > host.vcpus:
        vcpu.set("current", str(host.vcpus))
    else:
        _drop_attribute(vcpu, "current")
    if host.cpus:
        vcpu.set("cpuset", host.cpus)
    else:
        _drop_attribute(vcpu, "cpuset")


def _set_os(root: etree._Element, spec: DomainSpec) -> None:
    os_el = _child(root, "os")
    os_type = os_el.find("type")
    if os_type is None:
        os_type = etree.Element("type")
        os_el.insert(0, os_type)
    # Xen runs a guest paravirtualised unless the host asks for hvm (MLN's meaning).
    os_type.text = "xen" if spec.virt_type == "xen" and not spec.host.hvm else "hvm"
    boot = spec.boot
    direct = boot.kind == "direct"
    for tag, value in (("kernel", boot.kernel), ("initrd", boot.initrd), ("cmdline", boot.cmdline)):
        element = os_el.find(tag)
        if direct and value:
            if element is None:
                element = etree.SubElement(os_el, tag)
            element.text = value
        elif element is not None:
            os_el.remove(element)
    for old in os_el.findall("boot"):
        os_el.remove(old)
    for device in spec.host.boot or ("hd",):
        etree.SubElement(os_el, "boot", dev=device)


def _disk_with_target(devices: etree._Element, dev: str) -> etree._Element | None:
    for disk in devices.findall("disk"):
        target = disk.find("target")
        if target is not None and target.get("dev") == dev:
            return disk
    return None


def _set_disk(
    devices: etree._Element,
    dev: str,
    path: str,
    fmt: str,
    *,
    readonly: bool,
    block: bool = False,
    serial: str | None = None,
) -> etree._Element:
    disk = _disk_with_target(devices, dev)
    if disk is None:
        disk = etree.Element("disk")
        before = devices.find("interface")
        if dev == SEED_DEV and (vda := _disk_with_target(devices, DISK_DEV)) is not None:
            vda.addnext(disk)
        elif before is not None:
            before.addprevious(disk)
        else:
            devices.insert(len(devices.findall("emulator")), disk)
    disk.set("type", "block" if block else "file")
    disk.set("device", "disk")
    driver = _child(disk, "driver")
    driver.set("name", "qemu")
    driver.set("type", fmt)
    source = _child(disk, "source")
    source.attrib.clear()
    source.set("dev" if block else "file", path)
    target = _child(disk, "target")
    target.set("dev", dev)
    target.set("bus", "virtio")
    if serial is not None:
        _child(disk, "serial").text = serial
    has_readonly = disk.find("readonly")
    if readonly and has_readonly is None:
        etree.SubElement(disk, "readonly")
    elif not readonly and has_readonly is not None:
        disk.remove(has_readonly)
    return disk


def _serial_of(disk: etree._Element) -> str | None:
    return disk.findtext("serial")


def _free_target(devices: etree._Element, taken: set[str]) -> str:
    """The first ``vdX`` after the root disk and seed that no disk uses."""
    used = taken | {
        t.get("dev", "") for t in devices.iterfind("disk/target") if t.get("dev")
    }
    for letter in "cdefghijklmnopqrstuvwxyz":
        if f"vd{letter}" not in used:
            return f"vd{letter}"
    raise ValueError("more than 24 virtio disks on one domain")


def data_disk_element(disk: DiskSpec, target: str) -> etree._Element:
    """A ``<disk>`` for an extra disk: virtio, serial = the disk's name (for hot-plug too)."""
    holder = etree.Element("devices")
    return _set_disk(
        holder, target, disk.path, disk.format, readonly=False, block=disk.block,
        serial=disk.serial,
    )


def _set_data_disks(
    devices: etree._Element, disks: tuple[DiskSpec, ...], previous: tuple[str, ...]
) -> None:
    """Extra disks in file order; one keeps its target once given, so the guest's
    ``/dev/vdX`` names stay put when disks are added or removed around it."""
    wanted = {d.serial: d for d in disks}
    managed = set(previous) | set(wanted)
    existing: dict[str, etree._Element] = {}
    # A removed disk may still be plugged into the running guest until it lets go:
    # its target is not given to a new disk in the same change.
    released: set[str] = set()
    for element in devices.findall("disk"):
        serial = _serial_of(element)
        if serial in wanted:
            existing[serial] = element
        elif serial in managed:
            target = element.find("target")
            if target is not None and target.get("dev"):
                released.add(target.get("dev", ""))
            devices.remove(element)
    for disk in disks:
        current = existing.get(disk.serial)
        target = current.find("target") if current is not None else None
        dev = target.get("dev") if target is not None else None
        if current is not None and dev:
            _set_disk(
                devices, dev, disk.path, _kept_format(current, disk), readonly=False,
                block=disk.block, serial=disk.serial,
            )
            continue
        new = data_disk_element(disk, _free_target(devices, released))
        disks_now = devices.findall("disk")
        if disks_now:
            disks_now[-1].addnext(new)
        else:
            devices.insert(0, new)


def _kept_format(current: etree._Element, disk: DiskSpec) -> str:
    """The format to read ``disk`` as: a probed image already attached from the same
    file keeps the format it was given then (what the guest wrote into it since,
    e.g. an image header in a raw file, must not change how the host reads it)."""
    source = current.find("source")
    driver = current.find("driver")
    same_file = source is not None and source.get("file") == disk.path
    if disk.probed and same_file and driver is not None and driver.get("type"):
        return driver.get("type", disk.format)
    return disk.format


def _set_backing_chain(
    devices: etree._Element, dev: str, chain: tuple[BackingFile, ...] | None
) -> None:
    """Write ``chain`` under disk ``dev``: one ``<backingStore>`` per file, each
    source marked ``relabel='no'`` for the DAC model, ended by an empty
    ``<backingStore/>`` (registered templates never have a backing file, so
    the chain is complete and libvirt need not probe it). An empty chain is
    the bare terminator (no backing file); None (not known) keeps whatever
    chain the document already has."""
    disk = _disk_with_target(devices, dev)
    if disk is None or chain is None:
        return
    for old in disk.findall("backingStore"):
        disk.remove(old)
    outer = etree.Element("backingStore")
    store = outer
    for index, member in enumerate(chain):
        if index:
            store = etree.SubElement(store, "backingStore")
        store.set("type", "file")
        etree.SubElement(store, "format", type=member.format)
        source = etree.SubElement(store, "source", file=member.path)
        etree.SubElement(source, "seclabel", model="dac", relabel="no")
    if chain:
        etree.SubElement(store, "backingStore")
    _child(disk, "source").addnext(outer)


def _remove_seed(devices: etree._Element) -> None:
    disk = _disk_with_target(devices, SEED_DEV)
    if disk is None:
        return
    source = disk.find("source")
    if source is not None and source.get("file", "").endswith(names.SEED_SUFFIX):
        devices.remove(disk)


def nic_element(
    nic: NicSpec, existing: etree._Element | None = None, *, container: bool = False
) -> etree._Element:
    """An ``<interface>`` for ``nic``, editing ``existing`` in place when given; a
    container's is named inside as the host's interface (a veth pair has no
    device model)."""
    element = existing if existing is not None else etree.Element("interface")
    element.set("type", nic.kind)
    mac = _child(element, "mac", first=True)
    mac.set("address", nic.mac.lower())
    if nic.kind == "user":
        source = element.find("source")
        if source is not None:
            element.remove(source)
    else:
        source = _child(element, "source")
        source.attrib.clear()
        source.set(nic.kind, nic.network or nic.bridge or "")
    if container:
        if nic.name:
            _child(element, "guest").set("dev", nic.name)
    else:
        _child(element, "model").set("type", "virtio")
    return element


def _mac_of(interface: etree._Element) -> str:
    mac = interface.find("mac")
    return mac.get("address", "").lower() if mac is not None else ""


def _set_nics(
    devices: etree._Element, nics: tuple[NicSpec, ...], previous_macs: tuple[str, ...],
    *, container: bool = False,
) -> None:
    wanted = {n.mac.lower(): n for n in nics}
    managed = set(previous_macs) | set(wanted)
    existing = {}
    for interface in devices.findall("interface"):
        mac = _mac_of(interface)
        if mac in wanted:
            existing[mac] = interface
        elif mac in managed:
            devices.remove(interface)
    anchor = None
    for nic in nics:
        mac = nic.mac.lower()
        element = nic_element(nic, existing.get(mac), container=container)
        if mac not in existing:
            if anchor is not None:
                anchor.addnext(element)
            else:
                _insert_interface(devices, element)
        anchor = element


def _insert_interface(devices: etree._Element, element: etree._Element) -> None:
    """Put a new NIC after the existing NICs, or after the disks."""
    interfaces = devices.findall("interface")
    disks = devices.findall("disk")
    if interfaces:
        interfaces[-1].addnext(element)
    elif disks:
        disks[-1].addnext(element)
    else:
        devices.append(element)


def _set_console(devices: etree._Element, log_file: str) -> None:
    serial = devices.find("serial")
    if serial is None:
        serial = etree.SubElement(devices, "serial")
    serial.set("type", "pty")
    log = serial.find("log")
    if log is None:
        log = etree.Element("log")
        serial.insert(0, log)
    log.set("file", log_file)
    log.set("append", "off")
    _child(serial, "target").set("port", "0")
    console = devices.find("console")
    if console is None:
        console = etree.Element("console", type="pty")
        serial.addnext(console)
    target = _child(console, "target")
    target.set("type", "serial")
    target.set("port", "0")


def _wants_vnc(spec: DomainSpec) -> bool:
    return spec.host.vncdisplay is not None or spec.host.vncpasswd is not None


def _set_vnc(devices: etree._Element, spec: DomainSpec, corral_added: bool) -> None:
    vnc = devices.find("graphics[@type='vnc']")
    if not _wants_vnc(spec):
        if vnc is not None and corral_added:
            devices.remove(vnc)
        return
    if vnc is None:
        vnc = etree.Element("graphics", type="vnc")
        console = devices.find("console")
        if console is not None:
            console.addnext(vnc)
        else:
            devices.append(vnc)
    display = spec.host.vncdisplay
    if display is not None:
        vnc.set("port", str(VNC_BASE_PORT + display))
        vnc.set("autoport", "no")
    else:
        _drop_attribute(vnc, "port")
        vnc.set("autoport", "yes")
    if spec.host.vncpasswd:
        vnc.set("passwd", spec.host.vncpasswd)
    else:
        _drop_attribute(vnc, "passwd")

"""lcfg-xen resources (an LCFG profile of the ``xen`` component) into a Corral project.

``virtualmachines`` lists the VMs by tag; per-VM resources are ``KEY_TAG``
(``memory_node1``), per-interface ``KEY_TAG_VIF`` (``mac_node1_vif1``) and
per-disk ``KEY_TAG_DISK`` (or ``KEY_TAG`` for a VM's only disk).
``virtualgroup`` lists groups, each with ``members_G`` and ``groupKEY_G``;
``bridgeinterfaces`` the host bridges. In Corral a VM is a host, a group a
``group`` (its hardware keys; its network keys go to each member's
interfaces, where a member's own setting must win), a ``nat`` or ``route``
network one switch of that kind, a bridged network the existing host bridge.
Every resource the converter does not read is a warning at its line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from corral.convert import lcfg_resources
from corral.convert.lcfg_resources import Resource, Resources
from corral.convert.result import Conversion, Warnings
from corral.convert.writer import Stmt, block, name_of, render, stmt, template_name_of
from corral.model import values
from corral.model.hosts import DISK_NAME_MAX, INTERFACE_NAME

FORMAT = "lcfg"
looks_like = lcfg_resources.looks_like
DEFAULT_BRIDGE = "xenbr0"  # Xen's own bridge, where a vif goes without a network type
ASSUMED_PREFIX = 24
SWITCHED = ("nat", "route")
HARDWARE = ("memory", "maxmem", "vcpus", "cpus")
NETWORK = ("bridge", "nettype", "script")
NOT_CARRIED = {
    "profileurl": "LCFG management of the guest (its profile URL) is not carried over",
    "partition": "the root partition number is not carried over: the template decides",
    "script": "the vif script is not carried over: the network type decides",
}
_TRUE, _FALSE = {"yes", "on", "true", "1"}, {"no", "off", "false", "0"}


@dataclass(slots=True)
class _Vm:
    tag: str
    name: str
    line: int
    own: dict[str, tuple[str, int]] = field(default_factory=dict)  # hardware key: value
    groups: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Context:
    resources: Resources
    warnings: Warnings
    vms: dict[str, _Vm] = field(default_factory=dict)  # by tag
    templates: dict[str, str] = field(default_factory=dict)  # name: image path
    switches: dict[str, ipaddress.IPv4Interface] = field(default_factory=dict)
    macs: dict[str, str] = field(default_factory=dict)
    uuids: dict[str, str] = field(default_factory=dict)
    groups: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)
    vif_bridges: dict[str, tuple[str, int]] = field(default_factory=dict)  # number: bridge


def convert(text: str, file: str, stem: str) -> Conversion:
    """The Corral project of the lcfg-xen resources in ``text`` (no site config:
    an LCFG profile describes the one machine it is the profile of)."""
    warnings = Warnings()
    context = _Context(lcfg_resources.read(text, warnings), warnings)
    _read_vms(context)
    _read_bridges(context)
    groups = _read_groups(context)
    hosts = [_host(context, vm) for vm in context.vms.values()]
    stanzas: list[Stmt] = [block(["global"], [stmt("project", name_of(stem, "converted"))],
                                 comments=_template_comments(context))]
    stanzas += _switch_stanzas(context)
    stanzas += groups
    stanzas += hosts
    _warn_unread(context)
    return Conversion(FORMAT, render(_header(file), stanzas), None, warnings.done())


def _header(file: str) -> list[str]:
    return [
        f"Converted by `corral convert` from the lcfg-xen resources of {file}.",
        "Virtual machines are hosts, virtual groups are groups; a nat or route network",
        "is a switch of that kind, a bridged one the existing host bridge.",
    ]


def _read_vms(context: _Context) -> None:
    names: dict[str, str] = {}
    for tag, line in context.resources.words("virtualmachines"):
        if tag in context.vms:
            context.warnings.add(line, f"virtual machine {tag} is listed again")
            continue
        given = context.resources.text(f"name_{tag}")
        wanted = given.text if given is not None and given.text else tag
        name = name_of(wanted, "vm")
        if name != wanted:
            context.warnings.add(given.line if given else line,
                                 f"VM name {wanted!r} becomes host {name}")
        if name in names:
            context.warnings.add(given.line if given else line, f"VM {tag} is named {name} "
                                 f"like VM {names[name]}: it is not carried over")
            continue
        names[name] = tag
        context.vms[tag] = _Vm(tag, name, line)


def _read_bridges(context: _Context) -> None:
    """Which bridge each vif number goes to (``bridgevifnum_I``/``bridgeif_I``);
    Corral attaches to these bridges but never creates them, so each is warned."""
    for interface, line in context.resources.words("bridgeinterfaces"):
        bridge = context.resources.text(f"bridgeif_{interface}")
        device = context.resources.text(f"bridgenetdev_{interface}")
        number = context.resources.text(f"bridgevifnum_{interface}")
        if bridge is None:
            context.warnings.add(line, f"bridge interface {interface} has no bridgeif: "
                                 "not carried over")
            continue
        context.warnings.add(bridge.line, f"bridge {bridge.text} (on "
                             f"{device.text if device else interface}) is not created by "
                             "Corral: it must exist on the service host")
        if number is not None:
            context.vif_bridges[number.text] = (bridge.text, bridge.line)


def _read_groups(context: _Context) -> list[Stmt]:
    out = []
    by_name = {vm.name: vm for vm in context.vms.values()}
    by_tag = context.vms
    for group, line in context.resources.words("virtualgroup"):
        name = name_of(group, "group")
        if name in context.groups:
            context.warnings.add(line, f"group {group} is listed again (as {name}): "
                                 "this one is not carried over")
            continue
        members: list[str] = []
        for member, at in context.resources.words(f"members_{group}"):
            vm = by_tag.get(member) or by_name.get(member)
            if vm is None:
                context.warnings.add(at, f"member {member} of group {group} is not a "
                                     "virtual machine of the file: left out")
            elif vm.name in members:
                context.warnings.add(at, f"member {member} of group {group} is listed again")
            else:
                members.append(vm.name)
                vm.groups.append(name)
        settings: dict[str, tuple[str, int]] = {}
        for key in (*HARDWARE, *NETWORK):
            found = context.resources.text(f"group{key}_{group}")
            if found is not None:
                value = _hardware(context, key, found) if key in HARDWARE else found.text
                if value is not None:
                    settings[key] = (value, found.line)
        context.groups[name] = settings
        if "script" in settings:
            context.warnings.add(settings["script"][1], f"groupscript_{group}: "
                                 f"{NOT_CARRIED['script']}")
        if not members:
            context.warnings.add(line, f"group {group} has no members among the virtual "
                                 "machines: not carried over")
            continue
        body = [stmt("members", *members)]
        body += [stmt(key, settings[key][0]) for key in HARDWARE if key in settings]
        out.append(block(["group", name], body))
    return out


def _hardware(context: _Context, key: str, found: Resource) -> str | None:
    """A hardware value as Corral writes it, or None (warned) when it is not one."""
    text = found.text.strip().strip("\"'")
    if key in ("memory", "maxmem") and text.isdigit() and int(text) > 0:
        return f"{int(text)}M"
    if key == "vcpus" and text.isdigit() and int(text) > 0:
        return str(int(text))
    if key == "cpus":
        try:
            return values.cpuset(text.replace(" ", ""))
        except ValueError:
            pass
    context.warnings.add(found.line, f"{key} {found.text!r} is not understood: not "
                         "carried over")
    return None


def _host(context: _Context, vm: _Vm) -> Stmt:
    resources, tag = context.resources, vm.tag
    body: list[Stmt] = []
    uuid = resources.text(f"uuid_{tag}")
    if uuid is not None:
        body += _uuid(context, vm, uuid)
    kind = resources.text(f"type_{tag}")
    if kind is not None:
        if kind.text == "hvm":
            body.append(stmt("hvm"))
        elif kind.text not in ("paravm", "pv", "para"):
            context.warnings.add(kind.line, f"type {kind.text!r} is not understood: the "
                                 "guest is not fully virtualised")
    template = resources.text(f"template_{tag}")
    if template is not None and template.text:
        name = template_name_of(PurePosixPath(template.text).stem)
        context.templates.setdefault(name, template.text)
        body.append(stmt("template", name))
    for key in HARDWARE:
        found = resources.text(f"{key}_{tag}")
        value = _hardware(context, key, found) if found is not None else None
        if found is not None and value is not None:
            vm.own[key] = (value, found.line)
    _group_agreement(context, vm)
    body += [stmt(key, vm.own[key][0]) for key in HARDWARE if key in vm.own]
    boot = resources.text(f"boot_{tag}")
    if boot is not None:
        body += _autostart(context, boot)
    for key, why in NOT_CARRIED.items():
        found = resources.text(f"{key}_{tag}")
        if found is not None:
            context.warnings.add(found.line, f"{key}_{tag}: {why}")
    body += _disks(context, vm)
    body += _interfaces(context, vm)
    return block(["host", vm.name], body)


def _uuid(context: _Context, vm: _Vm, uuid: Resource) -> list[Stmt]:
    return _identity(context, "uuid", uuid, values.uuid, context.uuids, vm.tag,
                     "is not a UUID (8-4-4-4-12 hex digits)", "libvirt generates one")


def _identity(context: _Context, key: str, resource: Resource, parse: Callable[[str], str],
              seen: dict[str, str], owner: str, malformed: str, instead: str) -> list[Stmt]:
    """``key`` (a UUID, a MAC) carried over when it is well formed and nobody else's;
    else a warning at its line saying what happens ``instead``."""
    try:
        text = parse(resource.text)
    except ValueError:
        context.warnings.add(resource.line, f"{key} {resource.text!r} of {owner} {malformed}: "
                             f"{instead}")
        return []
    if text in seen:
        context.warnings.add(resource.line, f"{key} {text} of {owner} is also {seen[text]}'s: "
                             f"{instead} for {owner}")
        return []
    seen[text] = owner
    return [stmt(key, text)]


def _autostart(context: _Context, boot: Resource) -> list[Stmt]:
    word = boot.text.lower()
    if word in _TRUE | _FALSE:
        return [stmt("autostart", "yes" if word in _TRUE else "no")]
    context.warnings.add(boot.line, f"boot {boot.text!r} is neither yes nor no: not "
                         "carried over")
    return []


def _effective(context: _Context, vm: _Vm, key: str) -> tuple[str, int] | None:
    if key in vm.own:
        return vm.own[key]
    for group in vm.groups:
        if key in context.groups.get(group, {}):
            return context.groups[group][key]
    return None


def _group_agreement(context: _Context, vm: _Vm) -> None:
    """Two groups of a VM that disagree on a key the VM does not set are an error in
    Corral (which would win cannot depend on the order): the first group's value
    is set on the host, warned. So is a memory above the ceiling (``vm.own``)."""
    for key in HARDWARE:
        if key in vm.own:
            continue
        seen = [(g, context.groups[g][key]) for g in vm.groups if key in context.groups[g]]
        if len({value for _, (value, _) in seen}) > 1:
            (first, (value, _)), (other, (_, line)) = seen[0], seen[1]
            context.warnings.add(line, f"groups {first} and {other} give {vm.name} different "
                                 f"{key}: {first}'s {value} is written on the host")
            vm.own[key] = (value, line)
    memory, ceiling = _effective(context, vm, "memory"), _effective(context, vm, "maxmem")
    if memory is not None and ceiling is not None and _mib(memory[0]) > _mib(ceiling[0]):
        context.warnings.add(ceiling[1], f"{vm.name}'s maxmem {ceiling[0]} is below its "
                             f"memory {memory[0]}: maxmem is raised to {memory[0]}")
        vm.own["maxmem"] = (memory[0], ceiling[1])


def _mib(value: str) -> int:
    return int(value.rstrip("M"))


def _disks(context: _Context, vm: _Vm) -> list[Stmt]:
    """The first disk is the root disk (the run copy of the template: its size and
    directory); the others are new, empty disks of their size."""
    resources, tag = context.resources, vm.tag
    disks = resources.words(f"disks_{tag}")
    out: list[Stmt] = []
    names: set[str] = set()
    for index, (disk, line) in enumerate(disks):
        single = len(disks) == 1

        def key(name: str, disk: str = disk, single: bool = single) -> Resource | None:
            found = resources.text(f"{name}_{tag}_{disk}")
            return found if found is not None or not single else resources.text(
                f"{name}_{tag}")

        size, path, kind, name = key("disksize"), key("diskpath"), key("disktype"), key(
            "diskname")
        if kind is not None and kind.text != "image":
            context.warnings.add(kind.line, f"disk type {kind.text!r} of {tag} is not "
                                 "carried over: Corral makes an image file")
        if name is not None:
            context.warnings.add(name.line, f"disk image name {name.text!r} of {tag} is not "
                                 "carried over: Corral names its volumes")
        gigabytes = _gigabytes(context, size)
        if index == 0:
            if gigabytes is not None:
                out.append(stmt("size", gigabytes))
            if path is not None:
                try:
                    out.append(stmt("filepath", values.directory(path.text)))
                except ValueError as error:
                    context.warnings.add(path.line, f"disk path of {tag}: {error}: not "
                                         "carried over")
            continue
        if path is not None:
            context.warnings.add(path.line, f"disk path of {tag}'s disk {disk} is not carried "
                                 "over: extra disks live beside the root disk")
        if gigabytes is None:
            context.warnings.add(line, f"disk {disk} of {tag} has no size: not carried over")
            continue
        label = name_of(disk, "disk")[:DISK_NAME_MAX]
        if not _claim(context, names, line, f"disk {disk} of {tag}", disk, label, "disk"):
            continue
        out.append(block(["disk", label], [stmt("size", gigabytes)]))
    return out


def _claim(context: _Context, taken: set[str], line: int, what: str, written: str,
           name: str, kind: str) -> bool:
    """Take ``name`` (the Corral name of ``written``) for one of a VM's disks or
    interfaces: False, with a warning, when another already has it; a renaming
    is warned about too."""
    if name in taken:
        context.warnings.add(line, f"{what} is listed again (as {name}): not carried over")
        return False
    if name != written:
        context.warnings.add(line, f"{what} becomes {kind} {name}")
    taken.add(name)
    return True


def _gigabytes(context: _Context, size: Resource | None) -> str | None:
    if size is None:
        return None
    if size.text.isdigit() and int(size.text) > 0:
        return f"{int(size.text)}G"
    context.warnings.add(size.line, f"disk size {size.text!r} is not a number of GB: not "
                         "carried over")
    return None


def _interfaces(context: _Context, vm: _Vm) -> list[Stmt]:
    vifs = context.resources.words(f"vifs_{vm.tag}")
    grouped = [context.groups[g] for g in vm.groups]
    if not vifs and any(k in g for g in grouped for k in ("bridge", "nettype")):
        vifs = [("vif1", vm.line)]  # the group's network gives the VM its one interface
    out: list[Stmt] = []
    seen: set[str] = set()
    for vif, line in vifs:
        name = _interface_name(vif)
        if not _claim(context, seen, line, f"vif {vif} of {vm.tag}", vif, name, "interface"):
            continue
        out.append(_interface(context, vm, vif, name, line))
    return out


def _interface_name(vif: str) -> str:
    """``vif`` as an interface name Corral takes (a letter, then at most 14 more)."""
    if INTERFACE_NAME.fullmatch(vif):
        return vif
    return ("vif" + re.sub(r"[^A-Za-z0-9._-]+", "-", vif))[:15]


def _interface(context: _Context, vm: _Vm, vif: str, name: str, line: int) -> Stmt:
    resources, prefix = context.resources, f"{vm.tag}_{vif}"
    nettype = resources.text(f"nettype_{prefix}")
    bridge = resources.text(f"bridge_{prefix}")
    resources.text(f"script_{prefix}")
    kind, bridge_name = _attachment(context, vm, vif, nettype, bridge)
    body: list[Stmt] = []
    address = resources.text(f"ip_{prefix}")
    if kind in SWITCHED:
        switch = _switch(context, kind, address)
        body.append(stmt("switch", kind))
    else:
        body.append(stmt("bridge", bridge_name))
    mac = resources.text(f"mac_{prefix}")
    if mac is not None:
        body += _mac(context, vm, mac)
    if address is None:
        body.append(stmt("address", "dhcp"))
    elif kind in SWITCHED:
        body += _switched_address(context, switch, address)
    else:
        body += _bridged_address(context, resources, prefix, address)
    return block(["network", name], body)


def _attachment(context: _Context, vm: _Vm, vif: str, nettype: Resource | None,
                bridge: Resource | None) -> tuple[str, str]:
    """The network type and bridge of a vif: its own, else its groups', else the
    bridge its vif number is wired to, else Xen's default bridge."""
    group_type = next((g["nettype"] for g in map(context.groups.get, vm.groups)
                       if g and "nettype" in g), None)
    group_bridge = next((g["bridge"] for g in map(context.groups.get, vm.groups)
                         if g and "bridge" in g), None)
    kind = nettype.text if nettype is not None else (group_type[0] if group_type else None)
    if kind is not None and kind not in (*SWITCHED, "bridge"):
        context.warnings.add(nettype.line if nettype else group_type[1] if group_type else 1,
                             f"network type {kind!r} is not understood: bridged instead")
        kind = "bridge"
    if kind in SWITCHED:
        if group_bridge is not None and nettype is not None:
            context.warnings.add(group_bridge[1], f"{vm.name} {vif}: its own nettype {kind} "
                                 f"wins over the group's bridge {group_bridge[0]}")
        elif bridge is not None:
            context.warnings.add(bridge.line, f"{vm.name} {vif}: bridge {bridge.text} is "
                                 f"not carried over: the network type is {kind}")
        return kind, ""
    number = "".join(c for c in vif if c.isdigit())
    candidates = [(bridge.text, bridge.line)] if bridge is not None else []
    candidates += [found for found in (group_bridge, context.vif_bridges.get(number)) if found]
    for name, line in candidates:
        try:
            return "bridge", values.bridge(name)
        except ValueError as error:
            context.warnings.add(line, f"{vm.name} {vif}: {error}: not carried over")
    return "bridge", DEFAULT_BRIDGE


def _switch(context: _Context, kind: str, address: Resource | None) -> ipaddress.IPv4Interface:
    """The switch of a network kind: its address the .254 of the first address
    a vif of that kind gives (another when taken), else a private default."""
    if kind not in context.switches:
        base = "10.0.0.0" if kind == "nat" else "10.0.1.0"
        try:
            if address is not None:
                base = str(ipaddress.IPv4Interface(f"{address.text}/{ASSUMED_PREFIX}").network
                           .network_address)
        except ValueError:
            pass
        network = ipaddress.IPv4Network(f"{base}/{ASSUMED_PREFIX}")
        if any(network.overlaps(other.network) for other in context.switches.values()):
            network = ipaddress.IPv4Network(f"10.0.{len(context.switches) + 2}.0/24")
        context.switches[kind] = ipaddress.IPv4Interface(
            f"{network.broadcast_address - 1}/{ASSUMED_PREFIX}")
    return context.switches[kind]


def _switched_address(context: _Context, switch: ipaddress.IPv4Interface,
                      address: Resource) -> list[Stmt]:
    try:
        ip = ipaddress.IPv4Address(address.text)
    except ValueError:
        context.warnings.add(address.line, f"ip {address.text!r} is not an IPv4 address: "
                             "DHCP instead")
        return [stmt("address", "dhcp")]
    network = switch.network
    usable = ip in network and ip not in (network.network_address, network.broadcast_address)
    if not usable or ip == switch.ip:
        context.warnings.add(address.line, f"ip {ip} is not a free address of the "
                             f"{switch.network} network: DHCP instead")
        return [stmt("address", "dhcp")]
    return [stmt("address", str(ip))]


def _bridged_address(context: _Context, resources: Resources, prefix: str,
                     address: Resource) -> list[Stmt]:
    try:
        ip = ipaddress.IPv4Address(address.text)
    except ValueError:
        context.warnings.add(address.line, f"ip {address.text!r} is not an IPv4 address: "
                             "DHCP instead")
        return [stmt("address", "dhcp")]
    netmask = resources.text(f"netmask_{prefix}")
    gateway = resources.text(f"gateway_{prefix}")
    mask = netmask.text if netmask is not None else str(ASSUMED_PREFIX)
    if netmask is None:
        context.warnings.add(address.line, f"ip {ip} has no netmask: /{ASSUMED_PREFIX} is "
                             "assumed")
    try:
        network = ipaddress.IPv4Interface(f"{ip}/{mask}").network
    except ValueError:
        context.warnings.add(netmask.line if netmask else address.line,
                             f"netmask {mask!r} is not one: /{ASSUMED_PREFIX} is assumed")
        mask, network = str(ASSUMED_PREFIX), ipaddress.IPv4Interface(f"{ip}/24").network
    out = [stmt("address", str(ip)), stmt("netmask", mask)]
    if gateway is not None:
        try:
            if ipaddress.IPv4Address(gateway.text) in network:
                out.append(stmt("gateway", gateway.text))
            else:
                raise ValueError(gateway.text)
        except ValueError:
            context.warnings.add(gateway.line, f"gateway {gateway.text!r} is not an address "
                                 f"of {network}: not carried over")
    return out


def _mac(context: _Context, vm: _Vm, mac: Resource) -> list[Stmt]:
    return _identity(context, "mac", mac, values.mac, context.macs, vm.name,
                     "is not a MAC address", "Corral derives one")


def _switch_stanzas(context: _Context) -> list[Stmt]:
    return [block(["switch", kind], [stmt(kind), stmt("address", str(address))], comments=[
        f"The {kind} network of the Xen host. Its address is assumed: the .254 of",
        "the first address the file puts on it."]) for kind, address in context.switches.items()]


def _template_comments(context: _Context) -> list[str]:
    if not context.templates:
        return []
    lines = ["Templates to register (the images the VMs were cloned from):"]
    for name, path in context.templates.items():
        lines.append(f"    corral template add {name} {path}")
    return lines


def _warn_unread(context: _Context) -> None:
    """Every resource the mapping above did not read, with why where it is known."""
    for key, resource in context.resources.values.items():
        if key in context.resources.used:
            continue
        if key.startswith("xendconf"):
            why = "a setting of the Xen daemon, the service host's business"
        elif key.startswith("group"):
            why = "not a group key Corral knows (or its group is not in virtualgroup)"
        else:
            why = _unread_why(context, key)
        context.warnings.add(resource.line, f"{key} ({resource.text}): not carried over: {why}")


def _unread_why(context: _Context, key: str) -> str:
    """Why a per-VM resource was not read: its VM, vif or disk is not listed."""
    _, _, rest = key.partition("_")
    for tag in sorted(context.vms, key=len, reverse=True):
        if rest.startswith(f"{tag}_"):
            sub = rest[len(tag) + 1:]
            return f"{sub} is in neither vifs_{tag} nor disks_{tag}"
        if rest == tag:
            return "not a VM resource Corral knows"
    return "not a resource of a VM in virtualmachines, nor of a group or bridge"

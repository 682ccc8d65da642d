"""Build the typed :class:`~corral.model.project.Project` from a resolved tree.

Order of work, all problems collected into one :class:`~corral.errors.SourceErrors`:

1. ``global``: the project name (required) and the plugin blocks.
2. switches, then every host (:mod:`corral.model.hosts`).
3. checks across stanzas: an interface names a declared switch, a static
   address lies in its switch's subnet and is not used twice there, MACs
   written in the file are distinct.
4. MACs for the interfaces that give none (:mod:`corral.net.macs`).
5. per-host plugins, with the global block merged under the host's own.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from corral.config import SiteConfig
from corral.errors import DiagnosticSink, Span
from corral.lang.groups import ResolvedGroup
from corral.lang.resolve import ResolvedTree, did_you_mean, file_start, merge_statements
from corral.lang.tree import Statement, Word
from corral.model import values
from corral.model.hosts import HostDraft, InterfaceDraft, draft_host
from corral.model.project import Host, Origin, Project, Switch, SwitchMode
from corral.model.schema import (
    GLOBAL_KEYS,
    HOST_KEYS,
    HYPERVISOR_FLAGS,
    MERGE_POLICY,
    SWITCH_KEYS,
    SWITCH_MODES,
)
from corral.model.statements import read_block, simple_fields, value_word
from corral.net.macs import MacRequest, assign_macs
from corral.plugins.base import ApplyContext, settings_data
from corral.plugins.registry import PluginRegistry


@dataclass(frozen=True, slots=True)
class GlobalSettings:
    """What the ``global`` stanza says: the project name and plugin blocks by name."""

    project: str
    plugins: Mapping[str, Statement]


def build_project(
    tree: ResolvedTree, site: SiteConfig, plugins: PluginRegistry, *, local_files: bool = True
) -> Project:
    """The validated model of ``tree``; raises SourceErrors with every problem.

    ``local_files`` False: plugins may not read files of this machine.
    """
    sink = DiagnosticSink()
    settings = read_global(tree, plugins, sink)
    switches = {s.values[0].text: _switch(s, sink) for s in tree.switches}
    groups = {g.name.text: g.members for g in tree.groups if _group_settings(g, plugins, sink)}
    preset = site.preset_service_host()
    drafts = [draft_host(stanza, site.defaults, plugins, sink, preset) for stanza in tree.hosts]
    for draft in drafts:
        draft.fields["superclasses"] = tree.superclasses.get(draft.name, ())
        draft.fields["groups"] = tree.host_groups.get(draft.name, ())
    switch_words = {s.values[0].text: s.values[0] for s in tree.switches}
    _check_switch_use(drafts, switches, switch_words, sink)
    _check_vnc_displays(drafts, sink)
    _check_uuids(drafts, sink)
    _check_containers(drafts, sink)
    macs = _macs(settings.project, drafts, sink)
    hosts: dict[str, Host] = {}
    context = ApplyContext(project=settings.project, sink=sink, local_files=local_files)
    for draft in drafts:
        host = _host_model(draft, macs, sink)
        if host is not None:
            hosts[draft.name] = _apply_plugins(host, draft, settings, plugins, context)
    sink.raise_if_any()
    valid_switches = {name: sw for name, sw in switches.items() if sw is not None}
    return Project(name=settings.project, hosts=hosts, switches=valid_switches, groups=groups,
                   source=tree.path)


def _group_settings(group: ResolvedGroup, plugins: PluginRegistry, sink: DiagnosticSink) -> bool:
    """Check a group's name and settings against the host keys (what a group may
    set is what a host may): a mistake is reported at the group's own text once,
    whether or not a member got the value."""
    try:
        values.name(group.name.text)
    except ValueError as error:
        sink.error(group.name.span, f"group {error}")
        return False
    keys = read_block(group.settings, HOST_KEYS, sink, lambda k: plugins.claimant(k) is not None)
    simple_fields(keys, HOST_KEYS, sink)
    return True


def read_global(
    tree: ResolvedTree, plugins: PluginRegistry, sink: DiagnosticSink
) -> GlobalSettings:
    """The project name and the plugin blocks of the ``global`` stanza."""
    stanza = tree.global_stanza
    if stanza is None:
        sink.error(file_start(tree.path), "no global stanza: write global { project NAME }")
        return GlobalSettings(project="unnamed", plugins={})
    plugin_blocks: dict[str, Statement] = {}
    plain: list[Statement] = []
    for statement in stanza.block or ():
        key = statement.key.text
        if key in GLOBAL_KEYS or statement.block is None:
            plain.append(statement)
        elif plugins.get(key) is None:
            sink.error(
                statement.span,
                f"unknown plugin '{key}' (installed: {', '.join(plugins.names()) or 'none'})",
                did_you_mean(key, plugins.names()),
            )
        elif statement.values:
            sink.error(statement.values[0].span, f"a plugin block takes no name: {key} {{ ... }}")
        elif key in plugin_blocks:
            merged = merge_statements(plugin_blocks[key].block or (), statement.block, MERGE_POLICY)
            plugin_blocks[key] = statement.with_block(merged)
        else:
            plugin_blocks[key] = statement
    groups = read_block(tuple(plain), GLOBAL_KEYS, sink)
    fields = simple_fields(groups, GLOBAL_KEYS, sink)
    if "project" not in groups:
        sink.error(stanza.span, "the global stanza needs the project name: project NAME")
    return GlobalSettings(project=fields.get("name", "unnamed"), plugins=plugin_blocks)


def _switch(stanza: Statement, sink: DiagnosticSink) -> Switch | None:
    name_word = stanza.values[0]
    try:
        values.name(name_word.text)
    except ValueError as error:
        sink.error(name_word.span, f"switch {error}")
        return None
    groups = read_block(stanza.block or (), SWITCH_KEYS, sink)
    fields: dict[str, Any] = simple_fields(groups, SWITCH_KEYS, sink)
    modes = [s for key in SWITCH_MODES for s in groups.get(key, [])]
    for later in modes[1:]:
        sink.error(later.span, f"'{later.key.text}' conflicts with '{modes[0].key.text}'")
    if modes:
        fields["mode"] = SwitchMode(modes[0].key.text)
    flags = [s for key in HYPERVISOR_FLAGS for s in groups.get(key, [])]
    for later in flags[1:]:
        sink.error(later.span, f"conflicting hypervisor flags on switch '{name_word.text}'")
    if flags:
        fields["virt"] = flags[0].key.text
    _check_switch_fields(name_word.text, groups, fields, sink)
    origin = stanza.span
    try:
        return Switch(
            name=name_word.text,
            origin=Origin(file=origin.file, line=origin.line, column=origin.column),
            **fields,
        )
    except ValidationError as error:
        sink.error(stanza.span, f"switch '{name_word.text}': {error.errors()[0]['msg']}")
        return None


def _check_switch_fields(
    name: str, groups: dict[str, list[Statement]], fields: dict[str, Any], sink: DiagnosticSink
) -> None:
    """Keys that only act together: what libvirt would refuse, or silently ignore."""
    mode = fields.get("mode", SwitchMode.ISOLATED)
    if mode in (SwitchMode.NAT, SwitchMode.ROUTE) and "address" not in groups:
        sink.error(
            groups[mode.value][0].span,
            f"switch '{name}': {mode.value} needs the host-side address: address 10.0.0.1/24",
        )
    if mode is SwitchMode.BRIDGE and "address" in groups:
        sink.error(
            groups["address"][0].span,
            f"switch '{name}' joins an existing bridge, whose addresses are not Corral's to "
            "set: drop 'address' or 'bridge'",
        )
    if "dhcp" in groups and ("address" not in groups or mode is SwitchMode.BRIDGE):
        sink.error(
            groups["dhcp"][0].span,
            f"switch '{name}': dhcp needs an address on the switch (address 10.0.0.1/24), "
            "and Corral serves no DHCP on an existing bridge",
        )


def _check_vnc_displays(drafts: list[HostDraft], sink: DiagnosticSink) -> None:
    """Two guests on one service host cannot listen on the same VNC port (the
    scheduler keeps the hosts it places apart: corral/plan/placement.py)."""
    taken: dict[tuple[str, int], Span] = {}
    for draft in drafts:
        display, word = draft.fields.get("vncdisplay"), value_word(draft.groups, "vncdisplay")
        where = draft.fields.get("service_host")
        if display is None or word is None or where is None:
            continue
        key = (where, display)
        first = taken.setdefault(key, word.span)
        if first is not word.span:
            sink.error(
                word.span,
                f"vncdisplay {display} is already used on service host {key[0]} (at {first})",
            )


def _check_uuids(drafts: list[HostDraft], sink: DiagnosticSink) -> None:
    """A UUID names one domain: two hosts with one (e.g. from a shared superclass)
    could never both be defined. Other projects of the site are checked at plan
    time (:mod:`corral.plan.identities`)."""
    first: dict[str, tuple[str, Span]] = {}
    for draft in drafts:
        uuid, word = draft.fields.get("uuid"), value_word(draft.groups, "uuid")
        if uuid is None or word is None:
            continue
        owner, span = first.setdefault(uuid, (draft.name, word.span))
        if owner != draft.name:
            sink.error(
                word.span, f"host {draft.name}: uuid {uuid} is also host {owner}'s (at {span})"
            )


# What an ``lxc`` host cannot have, and why: a container runs its root tree on the
# service host's kernel, so it has no disks, firmware or display of its own.
CONTAINER_REFUSED = {
    "size": "a container's root is a directory, which has no size",
    "free_space": "a container's root is a directory, which has no size",
    "disk": "a container has no disks (its root is a directory)",
    "hvm": "a container boots no firmware",
    "boot": "a container boots no firmware",
    "vncdisplay": "a container has no display",
    "vncpasswd": "a container has no display",
    "lvm": "a container's root is a directory, not a volume",
    "lvm_vg": "a container's root is a directory, not a volume",
    "filepath": "a container's root is made in the site's runs directory",
}


def _check_containers(drafts: list[HostDraft], sink: DiagnosticSink) -> None:
    """An ``lxc`` host is refused what a container cannot have, at the key (never
    accepted and then ignored), and each NIC needs a switch or a bridge: QEMU's
    user-mode network is QEMU's."""
    for draft in drafts:
        if draft.fields.get("virt") != "lxc":
            continue
        for key, why in CONTAINER_REFUSED.items():
            statements = draft.groups.get(key)
            if statements:
                sink.error(statements[0].key.span,
                           f"host {draft.name}: '{key}' does not apply to an lxc host: {why}")
        for interface in draft.interfaces:
            if not interface.fields.get("switch") and not interface.fields.get("bridge"):
                sink.error(interface.statement.key.span,
                           f"host {draft.name}: interface {interface.name} of an lxc host needs "
                           "a switch or a bridge (user-mode networking is QEMU's)")


def _check_switch_use(
    drafts: list[HostDraft],
    switches: Mapping[str, Switch | None],
    switch_words: Mapping[str, Word],
    sink: DiagnosticSink,
) -> None:
    """Interfaces name declared switches; static addresses fit the switch and are unique."""
    used: dict[tuple[str, str], Span] = {}
    host_sides = {
        name: _Subnet.of(switch.address)
        for name, switch in switches.items()
        if switch is not None and switch.address is not None
    }
    for draft in drafts:
        for interface in draft.interfaces:
            name = interface.fields.get("switch")
            word = interface.word("switch")
            if name is None or word is None:
                _check_gateway(interface, None, sink)
                continue
            if name not in switch_words:
                sink.error(
                    word.span,
                    f"unknown switch '{name}': declare it with switch {name} {{ }}",
                    did_you_mean(name, switch_words),
                )
                continue
            _check_virt(draft, word, switches.get(name), sink)
            _check_address(interface, name, host_sides.get(name), used, sink)
            _check_gateway(interface, host_sides.get(name), sink)


def _check_virt(
    draft: HostDraft, word: Word, switch: Switch | None, sink: DiagnosticSink
) -> None:
    """A switch flagged for one hypervisor kind (MLN's ``switch lan { vmware }``) only
    connects hosts of that kind."""
    if switch is None or switch.virt is None:
        return
    virt = draft.fields.get("virt")
    if virt is not None and virt != switch.virt.value:
        sink.error(
            word.span,
            f"switch '{switch.name}' is for {switch.virt.value} hosts, and host "
            f"'{draft.name}' runs under {virt}",
        )


@dataclass(frozen=True, slots=True)
class _Subnet:
    """A switch's host side as integers: 10,000 hosts are checked against a few of these."""

    ip: int
    mask: int
    network: str  # 10.0.0.0/24 (worked out when needed, for an interface's own netmask)
    netmask: str  # 255.255.255.0

    @classmethod
    def of(cls, cidr: str) -> _Subnet:
        iface = ipaddress.IPv4Interface(cidr)
        return cls(int(iface.ip), int(iface.netmask), str(iface.network), str(iface.netmask))

    def holds(self, address: int) -> bool:
        return (address ^ self.ip) & self.mask == 0


@lru_cache(maxsize=64)
def _mask_bits(netmask: str) -> int:
    return int(ipaddress.IPv4Address(netmask))


def _bits(ip: str) -> int:
    """A dotted IPv4 address (already validated) as an integer, cheaply."""
    return int.from_bytes(socket.inet_aton(ip), "big")


def _check_gateway(interface: InterfaceDraft, subnet: _Subnet | None, sink: DiagnosticSink) -> None:
    """The gateway must be on the interface's subnet (its netmask, else its switch's)."""
    gateway, word = interface.fields.get("gateway"), interface.word("gateway")
    address = interface.fields.get("address")
    if gateway is None or word is None or address in (None, "dhcp"):
        return
    netmask = interface.fields.get("netmask")
    if netmask is not None:
        own = _Subnet(_bits(address), _mask_bits(netmask), "", netmask)
    elif subnet is not None:
        own = subnet
    else:
        return  # no netmask and no switch subnet: the guest's own default decides
    if not own.holds(_bits(gateway)):
        network = own.network or str(ipaddress.IPv4Network(f"{address}/{netmask}", strict=False))
        sink.error(
            word.span,
            f"gateway {gateway} is outside interface '{interface.name}''s subnet {network}",
        )
    elif gateway == address:
        sink.error(word.span, f"gateway {gateway} is the interface's own address")


def _check_address(
    interface: InterfaceDraft,
    switch: str,
    host_side: _Subnet | None,
    used: dict[tuple[str, str], Span],
    sink: DiagnosticSink,
) -> None:
    address, word = interface.fields.get("address"), interface.word("address")
    if word is None or address in (None, "dhcp"):
        return
    first = used.setdefault((switch, address), word.span)
    if first is not word.span:
        sink.error(
            word.span, f"address {address} is already used on switch '{switch}' (at {first})"
        )
    if host_side is None:
        return
    netmask, mask_word = interface.fields.get("netmask"), interface.word("netmask")
    if netmask is None:
        interface.fields["netmask"] = host_side.netmask
    elif netmask != host_side.netmask and mask_word is not None:
        sink.error(
            mask_word.span,
            f"netmask {netmask} disagrees with switch '{switch}' ({host_side.network}, "
            f"netmask {host_side.netmask}): drop it or make them agree",
        )
    ip = _bits(address)
    if not host_side.holds(ip):
        sink.error(
            word.span, f"address {address} is outside switch '{switch}' network {host_side.network}"
        )
    elif ip == host_side.ip:
        sink.error(word.span, f"address {address} is the host side of switch '{switch}'")


def _macs(
    project: str, drafts: list[HostDraft], sink: DiagnosticSink
) -> dict[tuple[str, str], str]:
    requests: list[MacRequest] = []
    given: dict[str, Span] = {}
    for draft in drafts:
        for interface in draft.interfaces:
            mac = interface.fields.get("mac")
            word = interface.word("mac")
            if mac is not None and word is not None:
                first = given.setdefault(mac, word.span)
                if first is not word.span:
                    sink.error(word.span, f"MAC {mac} is already used (at {first})")
            requests.append(MacRequest(draft.name, interface.name, mac))
    return assign_macs(project, requests)


def _host_model(
    draft: HostDraft, macs: Mapping[tuple[str, str], str], sink: DiagnosticSink
) -> Host | None:
    interfaces = [{**i.fields, "mac": macs[(draft.name, i.name)]} for i in draft.interfaces]
    try:
        return Host.model_validate({**draft.fields, "interfaces": interfaces})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        sink.error(draft.statement.values[0].span, f"host '{draft.name}': {where}: {first['msg']}")
        return None


def _apply_plugins(
    host: Host,
    draft: HostDraft,
    settings: GlobalSettings,
    plugins: PluginRegistry,
    context: ApplyContext,
) -> Host:
    """Run each per-host plugin set in global or in the host, global merged under host."""
    for name, plugin in sorted(plugins.plugins.items()):
        if not plugin.applies_per_host:
            continue
        in_global = settings.plugins.get(name)
        in_host = draft.plugin_settings.get(name)
        if in_global is None and in_host is None:
            continue
        merged = merge_statements(
            in_global.block or () if in_global else (), in_host or (), MERGE_POLICY
        )
        updates = dict(plugin.apply(host, merged, context))
        updates["plugins"] = {**host.plugins, name: settings_data(merged)}
        try:
            host = Host.model_validate({**dict(host), **updates})
        except ValidationError as error:
            context.sink.error(
                draft.statement.values[0].span,
                f"plugin '{name}' produced an invalid host: {error.errors()[0]['msg']}",
            )
    return host

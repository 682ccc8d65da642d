"""Turn one resolved host stanza into the fields of a :class:`~corral.model.project.Host`.

The result is a :class:`HostDraft`, not yet a model: MACs are assigned for the
whole project at once and plugins run on the finished host, both in
:mod:`corral.model.build`. Defaults a host does not set come from the site
config (memory, template, size, hypervisor kind); a host the file does not
place goes where the site presets, or is left to the scheduler
(docs/placement.md).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from corral.config import Defaults
from corral.errors import DiagnosticSink
from corral.images.passwords import password_problem
from corral.lang.parser import QuotedWord
from corral.lang.resolve import did_you_mean, merge_statements
from corral.lang.tree import Statement, Word
from corral.model import values
from corral.model.project import DiskType, Origin, PlacedBy, WaitKind
from corral.model.schema import (
    DISK_KEYS,
    DISK_TYPES,
    HOST_KEYS,
    HYPERVISOR_FLAGS,
    INTERFACE_KEYS,
    MERGE_POLICY,
    WAIT_KEYS,
    WAIT_KINDS,
)
from corral.model.statements import (
    INVALID,
    Groups,
    convert,
    read_block,
    simple_fields,
    value_word,
    words_of,
)
from corral.plugins.registry import PluginRegistry

INTERFACE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,14}")
DISK_NAME_MAX = 20  # virtio-blk serial numbers hold 20 bytes


@dataclass
class InterfaceDraft:
    """An interface's fields (no MAC unless the file gives one) and its value words."""

    statement: Statement
    fields: dict[str, Any]
    groups: Groups

    @property
    def name(self) -> str:
        name: str = self.fields["name"]
        return name

    def word(self, key: str) -> Word | None:
        return value_word(self.groups, key)


@dataclass
class HostDraft:
    """A host's fields before MACs and plugins; ``plugin_settings`` are the host's own blocks."""

    statement: Statement
    name: str
    fields: dict[str, Any]
    interfaces: list[InterfaceDraft]
    groups: Groups
    plugin_settings: dict[str, tuple[Statement, ...]] = field(default_factory=dict)


def draft_host(
    stanza: Statement, defaults: Defaults, plugins: PluginRegistry, sink: DiagnosticSink,
    preset_service_host: str | None = None,
) -> HostDraft:
    """Check and convert every statement of a resolved host stanza.

    ``preset_service_host`` is where a host the file does not place goes
    (:meth:`corral.config.SiteConfig.preset_service_host`); None leaves it to
    the scheduler at plan time.
    """
    name_word = stanza.values[0]
    try:
        values.name(name_word.text)
    except ValueError as error:
        sink.error(name_word.span, f"host {error}")
    groups = read_block(
        stanza.block or (), HOST_KEYS, sink, lambda k: plugins.claimant(k) is not None
    )
    fields = simple_fields(groups, HOST_KEYS, sink)
    fields["name"] = name_word.text
    fields["origin"] = Origin(
        file=stanza.span.file, line=stanza.span.line, column=stanza.span.column
    )
    _virt(groups, fields, defaults, sink)
    fields.setdefault("memory_mib", defaults.memory)
    if defaults.template is not None:
        fields.setdefault("template", defaults.template)
    _root_size(groups, fields, defaults, sink)
    _storage(groups, fields, defaults, sink)
    _boot_order(groups, sink)
    _placement(fields, preset_service_host)
    _ceilings(groups, fields, sink)
    interfaces = [_interface(s, sink) for s in groups.get("network", [])]
    _unique(interfaces, "interface", sink)
    fields["disks"] = tuple(_disks(groups.get("disk", []), bool(fields.get("lvm")), sink))
    fields["users"] = _users(groups.get("users", []), sink)
    for key in ("packages", "runcmd"):
        if key in groups:
            fields[key] = _list_values(groups[key][0], key == "runcmd", sink)
    if "wait" in groups:
        fields["wait"] = _wait(groups["wait"][0], sink)
    draft = HostDraft(stanza, name_word.text, fields, interfaces, groups)
    _claimed(draft, plugins)
    return draft


def _virt(groups: Groups, fields: dict[str, Any], defaults: Defaults, sink: DiagnosticSink) -> None:
    flags = sorted(
        (s for key in HYPERVISOR_FLAGS for s in groups.get(key, [])),
        key=lambda s: (s.span.file, s.span.line, s.span.column),
    )
    fields["virt"] = flags[0].key.text if flags else defaults.virt
    for later in flags[1:]:
        if later.key.text != flags[0].key.text:
            sink.error(
                later.span,
                f"conflicting hypervisor flags '{flags[0].key.text}' ({flags[0].span}) "
                f"and '{later.key.text}'",
            )


def _root_size(
    groups: Groups, fields: dict[str, Any], defaults: Defaults, sink: DiagnosticSink
) -> None:
    """``size`` is the root disk's size; ``free_space`` the room added to the template's
    own size (MLN's meaning). Both at once cannot both hold, so it is an error."""
    if "size" in groups and "free_space" in groups:
        sink.error(
            groups["free_space"][0].span,
            f"'free_space' and 'size' (at {groups['size'][0].span}) both set the root disk "
            "size: keep one",
        )
        fields.pop("free_space_mib", None)
    if "free_space" not in groups and defaults.size is not None:
        fields.setdefault("size_mib", defaults.size)


def _storage(
    groups: Groups, fields: dict[str, Any], defaults: Defaults, sink: DiagnosticSink
) -> None:
    """Where the host's volumes live: the project's pool, ``filepath DIR`` or an LVM group.

    ``lvm_vg VG`` alone means ``lvm`` on VG; ``lvm`` alone takes the site's
    ``[defaults] lvm_vg`` (without one, planning names the host that lacks a
    group: the file alone cannot say). LVM and ``filepath`` exclude each other.
    """
    if "lvm_vg" in groups:
        fields["lvm"] = True
    elif "lvm" in groups and defaults.lvm_vg is not None:
        fields["lvm_vg"] = defaults.lvm_vg
    if fields.get("lvm") and "filepath" in groups:
        first = groups.get("lvm", groups.get("lvm_vg", []))[0]
        sink.error(
            groups["filepath"][0].span,
            f"'filepath' and LVM storage (at {first.span}) exclude each other: keep one",
        )


def _placement(fields: dict[str, Any], preset: str | None) -> None:
    """Who places the host: the file (its stanza, a superclass, autoenum), the
    site's preset, or the scheduler. Kept in the model: only the file's choice
    moves a host that already runs (docs/placement.md)."""
    if "service_host" in fields:
        fields["placed_by"] = PlacedBy.FILE
    elif preset is not None:
        fields["service_host"], fields["placed_by"] = preset, PlacedBy.SITE
    else:
        fields["placed_by"] = PlacedBy.SCHEDULER


def _boot_order(groups: Groups, sink: DiagnosticSink) -> None:
    """``boot hd network``: each device once, in the order the firmware tries them."""
    seen: set[str] = set()
    for statement in groups.get("boot", []):
        for word in statement.values:
            if word.text in seen:
                sink.error(word.span, f"boot device '{word.text}' is listed twice")
            seen.add(word.text)


def _ceilings(groups: Groups, fields: dict[str, Any], sink: DiagnosticSink) -> None:
    """memory <= maxmem and vcpus <= maxvcpus: a ceiling below the value cannot be met."""
    for value_key, ceiling_key, value_field, ceiling_field, unit in (
        ("memory", "maxmem", "memory_mib", "maxmem_mib", " MiB"),
        ("vcpus", "maxvcpus", "vcpus", "maxvcpus", ""),
    ):
        ceiling = fields.get(ceiling_field)
        value = fields.get(value_field, 1)
        word = value_word(groups, ceiling_key)
        if ceiling is not None and word is not None and value > ceiling:
            sink.error(
                word.span,
                f"{ceiling_key} {ceiling}{unit} is below {value_key} {value}{unit}",
            )


def _interface(statement: Statement, sink: DiagnosticSink) -> InterfaceDraft:
    label = statement.values[0]
    if not INTERFACE_NAME.fullmatch(label.text):
        sink.error(
            label.span,
            f"invalid interface name '{label.text}': a letter, then up to 14 letters, "
            "digits, '.', '_' or '-'",
        )
    groups = read_block(statement.block or (), INTERFACE_KEYS, sink)
    fields = simple_fields(groups, INTERFACE_KEYS, sink)
    fields["name"] = label.text
    if "switch" in groups and "bridge" in groups:
        sink.error(
            groups["bridge"][0].span,
            f"interface {label.text}: 'bridge' and 'switch' (at {groups['switch'][0].span}) "
            "exclude each other: keep one",
        )
        fields.pop("bridge", None)
    if fields.get("address") == "auto":
        word = value_word(groups, "address")
        assert word is not None
        sink.error(
            word.span,
            "address auto is filled in by the autoenum plugin, and this host is not one of "
            "its hosts",
        )
        fields.pop("address")
    return InterfaceDraft(statement, fields, groups)


def _unique(interfaces: list[InterfaceDraft], what: str, sink: DiagnosticSink) -> None:
    seen: dict[str, Statement] = {}
    for interface in interfaces:
        first = seen.setdefault(interface.name, interface.statement)
        if first is not interface.statement:
            sink.error(
                interface.statement.values[0].span,
                f"{what} '{interface.name}' is defined twice (first at {first.values[0].span})",
            )


def _disks(
    statements: list[Statement], lvm: bool, sink: DiagnosticSink
) -> list[dict[str, Any]]:
    disks: dict[str, dict[str, Any]] = {}
    for statement in statements:
        label = statement.values[0]
        try:
            values.name(label.text)
        except ValueError as error:
            sink.error(label.span, f"disk {error}")
        if len(label.text) > DISK_NAME_MAX:
            sink.error(
                label.span,
                f"disk name '{label.text}' is longer than {DISK_NAME_MAX} characters "
                "(it is the disk's serial number in the guest)",
            )
        groups = read_block(statement.block or (), DISK_KEYS, sink)
        fields = _disk_fields(label.text, statement, groups, lvm, sink)
        if fields is not None:
            if label.text in disks:
                sink.error(label.span, f"disk '{label.text}' is defined twice")
            disks[label.text] = {"name": label.text, **fields}
    return list(disks.values())


def _disk_fields(
    name: str, statement: Statement, groups: Groups, lvm: bool, sink: DiagnosticSink
) -> dict[str, Any] | None:
    """A new disk (``size``; ``type qcow2|raw``) or an existing image (``path``;
    ``type image`` by default, whose format is probed, or ``raw``/``qcow2`` to
    say it); None when the statement does not say which, or says both. On LVM a
    new disk is a raw logical volume, so ``type qcow2`` there could not act."""
    fields = simple_fields(groups, DISK_KEYS, sink)
    type_word = value_word(groups, "type")
    if type_word is not None and type_word.text not in DISK_TYPES:
        sink.error(
            type_word.span,
            f"unknown disk type '{type_word.text}': use one of {', '.join(DISK_TYPES)}",
            did_you_mean(type_word.text, DISK_TYPES),
        )
        return None
    if "size" in groups and "path" in groups:
        sink.error(
            groups["path"][0].span,
            f"disk '{name}': 'path' and 'size' (at {groups['size'][0].span}) exclude each "
            "other: a path attaches an existing image as it is, a size makes a new disk",
        )
        return None
    if "size" not in groups and "path" not in groups:
        sink.error(
            statement.span,
            f"disk '{name}' needs a size (a new disk: size 10G) or a path (an existing "
            "image: path /srv/images/data.img)",
        )
        return None
    if "path" in groups:
        fields.setdefault("type", DiskType.IMAGE.value)
    elif type_word is not None and type_word.text == DiskType.IMAGE.value:
        sink.error(
            type_word.span,
            f"disk '{name}': type image attaches an existing file: give its path",
        )
        return None
    elif lvm and type_word is not None and type_word.text == DiskType.QCOW2.value:
        sink.error(
            type_word.span,
            f"disk '{name}': a new disk on LVM is a raw logical volume: drop 'type qcow2' "
            "or 'lvm'",
        )
        return None
    if "size_mib" not in fields and "path" not in fields:
        return None  # its value was refused above
    return fields


def _users(statements: list[Statement], sink: DiagnosticSink) -> dict[str, str]:
    """``users { NAME PASSWORD }``: names checked, a ``crypt:`` hash checked where written."""
    users: dict[str, str] = {}
    for block in statements:
        for entry in block.block or ():
            try:
                values.user_name(entry.key.text)
            except ValueError as error:
                sink.error(entry.span, str(error))
                continue
            if entry.block is not None or len(entry.values) != 1:
                sink.error(entry.span, f"a user is 'NAME PASSWORD': {entry.key.text} ...")
                continue
            password = entry.values[0]
            problem = password_problem(password.text)
            if problem is not None:
                sink.error(password.span, f"password of {entry.key.text}: {problem}")
                continue
            users[entry.key.text] = password.text
    return users


def _list_values(statement: Statement, whole_lines: bool, sink: DiagnosticSink) -> tuple[str, ...]:
    """``packages a b`` / ``packages { a b }`` words; for ``runcmd``, shell commands.

    ``runcmd`` commands (see docs/guest-configuration.md): in a block each
    line is one command; as values, ``runcmd touch /tmp/x`` is one command,
    while values that are all quoted, ``runcmd "apt-get update" "reboot"`` (or
    a YAML list of command strings), are one command each. A command that is
    one quoted string goes to the shell as it stands; otherwise it is built
    word by word by :func:`_command`. A ``{`` in a line opens a block, which a
    list line cannot have (``echo ${HOME}``): that is an error at the line.
    """
    for line in statement.block or ():
        if line.block is not None:
            sink.error(
                line.span,
                f"a {statement.key.text} line cannot hold a block: put words with braces "
                "in quotes ('${HOME}' is text; the guest shell's $HOME is written $$HOME)",
            )
    if not whole_lines:
        words = statement.values if statement.block is None else words_of(statement.block)
        return tuple(w.text for w in words)
    if statement.block is None:
        words = statement.values
        if all(isinstance(w, QuotedWord) for w in words):
            return tuple(w.text for w in words)
        return (_command(words),)
    return tuple(_command((line.key, *line.values)) for line in statement.block)


def _command(words: tuple[Word, ...]) -> str:
    """One shell command line from the words of the file.

    A quoted word is exactly one shell word whatever it holds (``;``, ``*``,
    ``$``, quotes, spaces), so it is quoted for the shell; an unquoted word
    keeps its shell meaning (``>``, ``|``, ``&&``, ``${HOME}``) and is passed
    as written. A command of a single quoted word is a whole command line
    written as a string, and goes to the shell as it stands.
    """
    if len(words) == 1:
        return words[0].text
    return " ".join(shlex.quote(w.text) if isinstance(w, QuotedWord) else w.text for w in words)


def _wait(statement: Statement, sink: DiagnosticSink) -> dict[str, Any]:
    """``wait console 120`` or ``wait { kind console; timeout 120 }``."""
    if statement.block is not None:
        groups = read_block(statement.block, WAIT_KEYS, sink)
        fields = simple_fields(groups, WAIT_KEYS, sink)
        kind_word = value_word(groups, "kind")
    else:
        words = statement.values
        fields, kind_word = {}, words[0]
        if len(words) > 2:
            sink.error(words[2].span, "wait takes a kind and an optional timeout: wait ssh 120")
        if len(words) >= 2:
            timeout = convert(WAIT_KEYS["timeout"], words[1], sink)
            if timeout is not INVALID:
                fields["timeout_s"] = timeout
        fields["kind"] = kind_word.text
    if kind_word is not None and kind_word.text not in WAIT_KINDS:
        sink.error(
            kind_word.span,
            f"unknown wait kind '{kind_word.text}': use one of {', '.join(WAIT_KINDS)}",
            did_you_mean(kind_word.text, WAIT_KINDS),
        )
        fields["kind"] = WaitKind.AUTO.value
    return fields


def _claimed(draft: HostDraft, plugins: PluginRegistry) -> None:
    """Collect the host's statements that plugins claim, per plugin, blocks unwrapped."""
    for key, statements in draft.groups.items():
        plugin = plugins.claimant(key) if key not in HOST_KEYS else None
        if plugin is None:
            continue
        settings = draft.plugin_settings.get(plugin.name, ())
        for statement in statements:
            own = key == plugin.name and statement.block is not None and not statement.values
            added = statement.block or () if own else (statement,)
            settings = merge_statements(settings, tuple(added), MERGE_POLICY)
        draft.plugin_settings[plugin.name] = settings

"""vmgen INI files (one or several virtual machines) into a Corral project.

A vmgen file describes a machine in sections: ``[machine]`` (its
virtualization type and operating system), ``[hardware]``, ``[disk NAME]``,
``[network]`` with ``[network IF]`` per interface, ``[users]`` and ``[user
NAME]``, ``[applications]``. A file of several machines names each in
``[machine NAME]`` and prefixes its other sections with that name (``[web
hardware]``); unprefixed sections then hold what every machine shares, and a
machine's own keys win over them. Each machine is a host: a container (the
``lxc`` flag and a directory template) or a full VM (``kvm``), its template
named after its operating system and release; interfaces naming one switch
share it. Everything the file says that Corral cannot say is a warning at its
line (:mod:`.vmgen_keys` reads the keys, :mod:`.vmgen_network` the topology).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from corral.convert import vmgen_ini
from corral.convert.result import Conversion, Warnings
from corral.convert.vmgen_ini import Ini
from corral.convert.vmgen_keys import (
    INSTALLERS,
    KEYS,
    LABELLED,
    Path,
    Setting,
    Settings,
    knows,
    packages,
    path_of,
    settings,
    words_of,
)
from corral.convert.vmgen_network import Nic, nic, wire
from corral.convert.writer import Stmt, block, name_of, render, stmt
from corral.errors import SourceErrors, Span
from corral.images.debian_builder import RELEASES
from corral.images.passwords import password_problem
from corral.model import values
from corral.model.hosts import DISK_NAME_MAX, INTERFACE_NAME

FORMAT = "vmgen"
SYSTEM_DISKS = ("sda", "hda", "vda", "xvda")  # the disk the guest boots from
DEFAULT_OS = "debian"
DEFAULT_RELEASES = {"debian": "12", "ubuntu": "24.04"}
DEBIAN_CODENAMES = {"10": "buster", "11": "bullseye", "12": "bookworm", "13": "trixie"}
APT_SYSTEMS = ("debian", "ubuntu")


@dataclass(frozen=True, slots=True)
class _Section:
    path: Path
    keys: Settings
    line: int
    name: str


@dataclass(slots=True)
class _Machine:
    """One machine: its settings per section kind, its subsections per label."""

    name: str
    line: int
    plain: dict[str, Settings] = field(default_factory=dict)
    labelled: dict[str, dict[str, tuple[Settings, int]]] = field(default_factory=dict)

    def keys(self, kind: str) -> Settings:
        return self.plain.get(kind, {})

    def subsections(self, kind: str) -> dict[str, tuple[Settings, int]]:
        return self.labelled.get(kind, {})


@dataclass(frozen=True, slots=True)
class _Template:
    """A template the hosts name, and how to make it."""

    name: str
    system: str
    release: str | None
    rootfs: bool


@dataclass(slots=True)
class _Context:
    warnings: Warnings
    said: set[tuple[int, str]] = field(default_factory=set)
    templates: dict[str, _Template] = field(default_factory=dict)
    nics: list[Nic] = field(default_factory=list)

    def warn_once(self, line: int, message: str) -> None:
        """A warning about a shared section's key, given once however many
        machines share it."""
        if (line, message) not in self.said:
            self.said.add((line, message))
            self.warnings.add(line, message)


def looks_like(text: str) -> bool:
    """A vmgen file: its first section (after ``[DEFAULT]``) is a ``[machine ...]``
    one, or it has a ``[machine]`` section and ``type`` or ``os`` keys."""
    names = [n for n in vmgen_ini.headers(text) if n != vmgen_ini.DEFAULT_SECTION]
    kinds = [(words_of(n) or [""])[0].lower() for n in names]
    if kinds and kinds[0] in ("machine", "machines"):
        return True
    keys = {line.split("=")[0].split(":")[0].strip().lower() for line in text.splitlines()}
    return "machine" in kinds and bool(keys & {"type", "os"})


def convert(text: str, file: str, stem: str) -> Conversion:
    """The Corral project of the vmgen file ``text``."""
    warnings = Warnings()
    context = _Context(warnings)
    ini = vmgen_ini.read(text, file, warnings)
    machines = _machines(ini, file, stem, context)
    hosts = [_host(context, machine) for machine in machines]
    switches = wire(context.nics, warnings)
    _unused_gateways(context, machines)
    for host, body in zip(hosts, _interfaces_by_host(context, machines), strict=True):
        host.extend(body)
    stanzas = [block(["global"], [stmt("project", name_of(stem, "converted"))],
                     comments=_template_comments(context))]
    stanzas += switches
    stanzas += [block(["host", m.name], body, comments=_description(m))
                for m, body in zip(machines, hosts, strict=True)]
    return Conversion(FORMAT, render(_header(file), stanzas), None, warnings.done())


def _header(file: str) -> list[str]:
    return [
        f"Converted by `corral convert` from the vmgen configuration {file}.",
        "Each machine is a host (a container: lxc; else a full VM: kvm); the",
        "interfaces that name one switch share it.",
    ]


def _description(machine: _Machine) -> list[str]:
    description = machine.keys("machine").get("description")
    return [str(description.value)] if description is not None else []


def _sections(ini: Ini, file: str, context: _Context) -> list[_Section]:
    """Each section with its place and checked keys; a section given twice under
    two spellings (``[disk sda]``, ``[disks.sda]``) is an error, a section that is
    not vmgen's a warning."""
    declared = [p.label for p in (path_of(s.name, ()) for s in ini.sections)
                if p is not None and p.kind == "machine" and p.label is not None]
    seen: dict[Path, tuple[str, int]] = {}
    out = []
    for section in ini.sections:
        path = path_of(section.name, declared)
        if path is None:
            context.warnings.add(section.line, f"section [{section.name}] is not a vmgen "
                                 "section: not carried over")
            continue
        if path in seen:
            first, line = seen[path]
            raise SourceErrors.single(
                Span(file, section.line, section.column), f"section [{section.name}] is "
                f"[{first}] again (first at line {line})", hint="merge the two sections")
        seen[path] = (section.name, section.line)
        keys = settings(section.name, path.kind, section.entries.values(), context.warnings)
        out.append(_Section(path, keys, section.line, section.name))
    return out


def _defaults(ini: Ini, context: _Context) -> dict[str, Settings]:
    """The ``[DEFAULT]`` keys each kind of section takes; one that none takes is warned."""
    out = {kind: settings("DEFAULT", kind, [e for e in ini.defaults.values()
                                            if knows(kind, e.key)], context.warnings)
           for kind in KEYS}
    for entry in ini.defaults.values():
        if not any(knows(kind, entry.key) for kind in KEYS):
            context.warnings.add(entry.line, f"[DEFAULT] key {entry.key} is a key of no vmgen "
                                 "section: not carried over")
    return out


def _machines(ini: Ini, file: str, stem: str, context: _Context) -> list[_Machine]:
    """The machines: one per ``[machine NAME]``, else the one of ``[machine]``."""
    sections = _sections(ini, file, context)
    defaults = _defaults(ini, context)
    named = [s for s in sections if s.path.kind == "machine" and s.path.label is not None]
    if not named:
        plain = next((s for s in sections if s.path.kind == "machine"), None)
        if plain is None:
            context.warnings.add(1, f"no [machine] section: one machine, {name_of(stem)}, "
                                 "of type kvm")
        machine = _fill(_Machine("", plain.line if plain is not None else 1), None, sections,
                        defaults)
        given = machine.keys("machine").get("name")
        machine.name = (_name(str(given.value), given.line, context) if given is not None
                        else name_of(stem, "vm"))
        return [machine]
    shared = next((s.keys["name"] for s in sections if s.path == Path(None, "machine", None)
                   and "name" in s.keys), None)
    if shared is not None:
        context.warnings.add(shared.line, f"name {shared.value} of the shared [machine] is not "
                             "carried over: the [machine NAME] sections name the machines")
    machines: list[_Machine] = []
    for section in named:
        assert section.path.label is not None
        name = _name(section.path.label, section.line, context)
        given = section.keys.get("name")
        if given is not None and given.value != section.path.label:
            context.warnings.add(given.line, f"name {given.value} of [{section.name}] is not "
                                 f"carried over: the section names the machine")
        if any(m.name == name for m in machines):
            context.warnings.add(section.line, f"machine {section.path.label} is named {name} "
                                 "like an earlier one: not carried over")
            continue
        machines.append(_fill(_Machine(name, section.line), section.path.label, sections,
                              defaults))
    return machines


def _name(wanted: str, line: int, context: _Context) -> str:
    name = name_of(wanted, "vm")
    if name != wanted:
        context.warnings.add(line, f"machine {wanted!r} becomes host {name}")
    return name


def _fill(machine: _Machine, label: str | None, sections: list[_Section],
          defaults: dict[str, Settings]) -> _Machine:
    """The machine's settings: ``[DEFAULT]``, then the shared sections, then its own.
    A section naming an ``os`` without a ``release`` drops the release it would
    inherit: that was another system's."""
    for kind in KEYS:
        if kind not in LABELLED:
            machine.plain[kind] = dict(defaults[kind])
    for owner in (None, label) if label is not None else (None,):
        for section in sections:
            path = section.path
            if path.owner != owner or (path.kind == "machine" and path.label not in (None, label)):
                continue
            if path.kind in LABELLED and path.label is not None:
                labels = machine.labelled.setdefault(path.kind, {})
                before = labels.get(path.label, (dict(defaults[path.kind]), section.line))[0]
                labels[path.label] = ({**before, **section.keys}, section.line)
            else:
                if "os" in section.keys and "release" not in section.keys:
                    machine.plain[path.kind].pop("release", None)  # another os's release
                machine.plain[path.kind].update(section.keys)
    return machine


def _host(context: _Context, machine: _Machine) -> list[Stmt]:
    """The statements of the machine's host, but for its interfaces."""
    body = _kind_and_template(context, machine)
    container = body[0].words == ("lxc",)
    body += _hardware(context, machine, container)
    body += _guest(context, machine)
    body += _no_disks(context, machine) if container else _extra_disks(context, machine)
    _collect_nics(context, machine)
    return body


def _no_disks(context: _Context, machine: _Machine) -> list[Stmt]:
    """A container's disks, each warned: its root is a directory, and it has no disks."""
    for label, (_, line) in machine.subsections("disk").items():
        context.warn_once(line, f"{machine.name}: disk {label} is not carried over: a "
                          f"container has no disks (its root is a directory)")
    return []


def _kind_and_template(context: _Context, machine: _Machine) -> list[Stmt]:
    keys = machine.keys("machine")
    kind, system = keys.get("type"), keys.get("os")
    os_name, release = (system.value if system is not None else (DEFAULT_OS, None))
    given = keys.get("release")
    if given is not None:
        if release is not None and release != given.value:
            context.warn_once(given.line, f"{machine.name}: release {given.value} contradicts "
                              f"os {system.text if system else ''}: {given.value} is kept")
        release = given.value
    release = _release(os_name, release)
    virt = kind.value if kind is not None else "kvm"
    if virt in ("lxc", "openvz") and os_name == "windows":
        context.warn_once(kind.line if kind else machine.line, f"{machine.name}: a Windows "
                          f"guest cannot be a {virt} container: it is a full VM (kvm)")
        virt = "kvm"
    elif virt == "openvz":
        context.warn_once(kind.line if kind else machine.line, f"{machine.name}: OpenVZ "
                          "containers are not Corral's: it is an lxc container")
    elif virt in ("vmware", "virtualbox"):
        context.warn_once(kind.line if kind else machine.line, f"{machine.name}: a {virt} VM "
                          "runs under KVM/QEMU in Corral")
    rootfs = virt in ("lxc", "openvz")
    template = _template(context, os_name, release, rootfs,
                         system.line if system is not None else machine.line)
    return [stmt("lxc" if rootfs else "kvm"), stmt("template", template)]


def _release(system: str, release: str | None) -> str | None:
    """The release as the template name says it: Debian's by number (``bookworm``
    and ``12.5`` are ``12``), a default for Debian and Ubuntu."""
    if release is None:
        return DEFAULT_RELEASES.get(system)
    if system == "debian":
        by_name = {name: number for number, name in DEBIAN_CODENAMES.items()}
        major = release.split(".")[0]
        return by_name.get(release, major if major in DEBIAN_CODENAMES else release)
    return release


def _template(context: _Context, system: str, release: str | None, rootfs: bool,
              line: int) -> str:
    name = "-".join(p for p in (system, release, "rootfs" if rootfs else None) if p)
    if name not in context.templates:
        context.templates[name] = _Template(name, system, release, rootfs)
    if _build_command(context.templates[name]) is None:
        why = (f"`corral template build` makes Debian {' and '.join(RELEASES)} only"
               if system in APT_SYSTEMS else "Corral builds Debian templates only")
        context.warn_once(line, f"{system} {release or ''}".rstrip() + f": {why}: register "
                          f"template {name} with `corral template add`")
    return name


def _build_command(template: _Template) -> str | None:
    codename = DEBIAN_CODENAMES.get(template.release or "")
    if template.system != "debian" or codename not in RELEASES:
        return None
    rootfs = " --rootfs" if template.rootfs else ""
    return f"corral template build debian --release {codename}{rootfs} --name {template.name}"


def _template_comments(context: _Context) -> list[str]:
    if not context.templates:
        return []
    lines = ["Templates to make or register before `corral up`:"]
    for template in context.templates.values():
        what = "a directory tree, for lxc" if template.rootfs else "a disk image"
        lines.append(f"  {template.name} ({what}):")
        command = _build_command(template)
        lines.append(f"    {command or f'corral template add {template.name} IMAGE'}")
    return lines


def _hardware(context: _Context, machine: _Machine, container: bool) -> list[Stmt]:
    keys = machine.keys("hardware")
    out: list[Stmt] = []
    cpus, memory, limit = keys.get("cpus"), keys.get("memory"), keys.get("memory_limit")
    if memory is not None:
        out.append(stmt("memory", _size(memory.value)))
    if limit is not None:
        ceiling = limit.value
        if memory is not None and memory.value > ceiling:
            context.warn_once(limit.line, f"{machine.name}: memory_limit {limit.text} is below "
                              f"memory {memory.text}: the limit is raised to "
                              f"{_size(memory.value)}")
            ceiling = memory.value
        if memory is None:
            context.warn_once(limit.line, f"{machine.name}: memory_limit without memory: not "
                              "carried over (the site's default memory may be above it)")
        else:
            out.append(stmt("maxmem", _size(ceiling)))
    if cpus is not None:
        out.append(stmt("vcpus", str(cpus.value)))
    if container:
        for key in ("disk_size", "disk_limit"):
            if key in keys:
                context.warn_once(keys[key].line, f"{machine.name}: {key} is not carried "
                                  "over: a container's root is a directory, which has no size")
        return out
    size = _root_size(context, machine)
    if size is not None:
        out.append(stmt("size", _size(size)))
    return out


def _root_size(context: _Context, machine: _Machine) -> int | None:
    """The root disk's size in MiB: the system disk's ``size``, else ``disk_size``,
    else ``disk_limit`` (a qcow2 disk grows up to its size: a limit); disks
    adding up to more than ``disk_limit`` are warned."""
    keys = machine.keys("hardware")
    given, limit = keys.get("disk_size"), keys.get("disk_limit")
    system = next(((label, s) for label, (s, _) in machine.subsections("disk").items()
                   if label.lower() in SYSTEM_DISKS and "size" in s), None)
    size = given
    if system is not None:
        label, disk = system
        if given is not None and given.value != disk["size"].value:
            context.warn_once(given.line, f"{machine.name}: disk_size {given.text} contradicts "
                              f"the size of disk {label} ({disk['size'].text}, line "
                              f"{disk['size'].line}): the disk's is kept")
        size = disk["size"]
    value = size.value if size is not None else (limit.value if limit is not None else None)
    if limit is not None:
        extra = sum(s["size"].value for label, (s, _) in machine.subsections("disk").items()
                    if label.lower() not in SYSTEM_DISKS and "size" in s)
        total = (size.value if size is not None else limit.value) + extra
        if total > limit.value:
            context.warn_once(limit.line, f"{machine.name}: the disks add up to {_size(total)}, "
                              f"above disk_limit {limit.text}: Corral has no disk limit; the "
                              "disks are made as given")
    return value


def _size(mib: int) -> str:
    return f"{mib // 1024}G" if mib % 1024 == 0 else f"{mib}M"


def _extra_disks(context: _Context, machine: _Machine) -> list[Stmt]:
    out = []
    names: set[str] = set()
    for label, (keys, line) in machine.subsections("disk").items():
        if label.lower() in SYSTEM_DISKS:
            if "format" in keys:
                context.warn_once(keys["format"].line, f"{machine.name}: format of the system "
                                  f"disk {label} is not carried over: the run copy is qcow2")
            continue
        name = name_of(label, "disk")[:DISK_NAME_MAX]
        if name in names:
            context.warn_once(line, f"{machine.name}: disk {label} is named {name} like an "
                              "earlier one: not carried over")
            continue
        if "size" not in keys:
            context.warn_once(line, f"{machine.name}: disk {label} has no size: not carried "
                              "over")
            continue
        if name != label:
            context.warn_once(line, f"{machine.name}: disk {label} becomes disk {name}")
        names.add(name)
        body = [stmt("size", _size(keys["size"].value))]
        if "format" in keys:
            body.append(stmt("type", str(keys["format"].value)))
        out.append(block(["disk", name], body))
    return out


def _guest(context: _Context, machine: _Machine) -> list[Stmt]:
    """Name servers, root's password, users and packages (seeded into the guest)."""
    out: list[Stmt] = []
    servers = machine.keys("network").get("nameservers")
    if servers is not None:
        out.append(stmt("nameserver", *servers.value))
    users = _users(context, machine)
    root = users.pop("root", None)
    if root is not None:
        out.append(stmt("root_passwd", root))
    if users:
        out.append(block(["users"], [stmt(name, password) for name, password in users.items()]))
    wanted = _packages(context, machine)
    if wanted:
        out.append(stmt("packages", *wanted))
    return out


def _users(context: _Context, machine: _Machine) -> dict[str, str]:
    """``[users]`` NAME = PASSWORD, and ``[user NAME]`` password (which wins)."""
    users = {name: str(s.value) for name, s in machine.keys("users").items()}
    listed = machine.keys("users")
    for label, (keys, line) in machine.subsections("user").items():
        password = keys.get("password")
        if label in listed and password is not None and listed[label].value != password.value:
            context.warn_once(password.line, f"{machine.name}: the password of {label} "
                              f"contradicts [users] (line {listed[label].line}): this one is kept")
        problem = _user_problem(label, password)
        if problem is not None:
            context.warn_once(password.line if password else line,
                              f"{machine.name}: user {label}: {problem}: not carried over")
            users.pop(label, None)
            continue
        assert password is not None
        users[label] = str(password.value)
    return users


def _user_problem(label: str, password: Setting | None) -> str | None:
    try:
        values.user_name(label)
    except ValueError as error:
        return str(error)
    if password is None:
        return "no password (Corral gives users one)"
    return password_problem(str(password.value))


def _packages(context: _Context, machine: _Machine) -> list[str]:
    """The applications as Debian packages; an installer that is not the OS's, and
    packages for a guest that is not Debian's, are warned."""
    keys = machine.keys("applications")
    items: list[tuple[str, int]] = [(item, s.line) for key, s in keys.items()
                                    if key != "installer" for item in s.value]
    system = machine.keys("machine").get("os")
    os_name = system.value[0] if system is not None else DEFAULT_OS
    installer = keys.get("installer")
    if installer is not None and os_name not in INSTALLERS[installer.value]:
        context.warn_once(installer.line, f"{machine.name}: installer {installer.value} is not "
                          f"{os_name}'s: not carried over (the guest's own package manager "
                          "installs the packages)")
    if not items:
        return []
    if os_name == "windows":
        context.warn_once(items[0][1], f"{machine.name}: applications of a Windows guest "
                          "are not carried over: Corral installs packages with the guest's "
                          "package manager")
        return []
    found = packages(_unique(items), _Once(context))
    if os_name not in APT_SYSTEMS:
        context.warn_once(items[0][1], f"{machine.name}: the packages are Debian's names; "
                          f"{os_name} may name them otherwise")
    return found


def _unique(items: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    seen: dict[str, int] = {}
    for item, line in items:
        seen.setdefault(item, line)
    return list(seen.items())


class _Once(Warnings):
    """The context's warnings seen through :class:`Warnings`, each given once."""

    def __init__(self, context: _Context) -> None:
        super().__init__()
        self._context = context

    def add(self, line: int, message: str) -> None:
        self._context.warn_once(line, message)


def _collect_nics(context: _Context, machine: _Machine) -> None:
    gateway = machine.keys("network").get("gateway")
    for label, (keys, line) in machine.subsections("interface").items():
        if not INTERFACE_NAME.fullmatch(label):
            context.warn_once(line, f"{machine.name}: interface {label!r} is not an "
                              "interface name (a letter, then letters, digits, . _ -, at most "
                              "15): not carried over")
            continue
        context.nics.append(nic(machine.name, label, line, keys, gateway, _Once(context)))


def _unused_gateways(context: _Context, machines: list[_Machine]) -> None:
    """A ``[network] gateway`` that no static interface of its machine is on."""
    for machine in machines:
        gateway = machine.keys("network").get("gateway")
        if gateway is not None and not any(n.took_default_gateway for n in context.nics
                                           if n.host == machine.name):
            context.warn_once(gateway.line, f"{machine.name}: gateway {gateway.value} is on "
                              "the network of no static interface: not carried over")


def _interfaces_by_host(context: _Context, machines: list[_Machine]) -> list[list[Stmt]]:
    return [[block(["network", n.name], n.body) for n in context.nics if n.host == m.name]
            for m in machines]


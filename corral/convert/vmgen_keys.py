"""The sections and keys of a vmgen file: what each means, how its value is read.

A section name is a path of words: ``[KIND]`` or ``[KIND LABEL]`` for the
sections of the file's machine(s), ``[MACHINE KIND ...]`` for one machine of a
file of several. Words are separated by spaces (the canonical spelling) or,
in a name without spaces, by dots (``[disks.sdb]``, ``[web.network.eth0]``).
Each key has one canonical name and may have aliases; a value is checked
here, once per section, so a bad value is warned once at its line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from corral.convert.result import Warnings
from corral.convert.vmgen_ini import Entry
from corral.images.installers import installer_for
from corral.images.passwords import password_problem
from corral.model import values
from corral.model.units import parse_size_mib

Parser = Callable[[str], Any]

# The word of a section kind: (its kind without a label, its kind with one).
KIND_WORDS: dict[str, tuple[str | None, str | None]] = {
    "machine": ("machine", "machine"), "machines": ("machine", "machine"),
    "hardware": ("hardware", None),
    "disk": (None, "disk"), "disks": (None, "disk"),
    "network": ("network", "interface"), "networks": ("network", "interface"),
    "interface": (None, "interface"), "interfaces": (None, "interface"),
    "users": ("users", "user"), "user": (None, "user"),
    "applications": ("applications", None), "apps": ("applications", None),
}
LABELLED = ("disk", "interface", "user")
TYPES = ("lxc", "openvz", "vmware", "virtualbox", "kvm")
MODES = ("nat", "route", "isolated", "bridge", "dhcp", "static")
BUSES = ("virtio", "ide", "scsi", "sata")
FORMATS = ("qcow2", "raw")
INSTALLERS = {"apt": ("debian", "ubuntu"), "yum": ("fedora",), "dnf": ("fedora",),
              "source": ("gentoo",), "emerge": ("gentoo",), "portage": ("gentoo",),
              "windows": ("windows",), "msi": ("windows",)}
AMD64 = ("x86_64", "amd64", "x86-64", "x64")
_OS_SPELLINGS = {"winxp": ("windows", "xp"), "win7": ("windows", "7"),
                 "windowsxp": ("windows", "xp"), "windows7": ("windows", "7")}
OPERATING_SYSTEMS = ("debian", "ubuntu", "fedora", "gentoo", "windows")
# The applications of the vmgen paper's predefined list (and their common
# spellings) as Debian packages; None: not packaged in Debian, with why.
APPLICATIONS: dict[str, tuple[str, ...] | str] = {
    "traceroute": ("traceroute",), "nmap": ("nmap",), "wireshark": ("wireshark",),
    "tcpdump": ("tcpdump",), "netcat": ("netcat-openbsd",), "ping": ("iputils-ping",),
    "emacs": ("emacs",), "vim": ("vim",), "valgrind": ("valgrind",), "gcc": ("gcc",),
    "gdb": ("gdb",), "make": ("make",),
    "eclipse": "Eclipse is not packaged in Debian (install it from eclipse.org)",
    "httpd": ("apache2",), "apache": ("apache2",), "sshd": ("openssh-server",),
    "ssh": ("openssh-server",), "git": ("git",), "ftpd": ("vsftpd",),
    "mysql": ("default-mysql-server",), "named": ("bind9",), "dns": ("bind9",),
    "dhcpd": ("isc-dhcp-server",), "nfs": ("nfs-kernel-server",), "samba": ("samba",),
    "smtp": ("postfix",), "browser": ("firefox-esr",), "web browser": ("firefox-esr",),
    "mail client": ("thunderbird",), "office": ("libreoffice",),
}
APPLICATION_KEYS = ("install", "networking", "development", "services", "gui")
_DEBIAN_NAME = installer_for("debian").name_pattern


@dataclass(frozen=True, slots=True)
class Path:
    """Where a section belongs: its machine (None: the file's, or every machine's),
    its kind and its label (a disk, interface or user name)."""

    owner: str | None
    kind: str
    label: str | None


@dataclass(frozen=True, slots=True)
class Setting:
    """A checked value with the line it was written at and its text."""

    value: Any
    line: int
    text: str


Settings = dict[str, Setting]


def words_of(name: str) -> list[str]:
    """The words of a section name: split at spaces, else (dotted spelling) at dots."""
    words = name.split() if any(c.isspace() for c in name.strip()) else name.strip().split(".")
    return [w for w in (w.strip() for w in words) if w]


def path_of(name: str, machines: Iterable[str]) -> Path | None:
    """The place of section ``name`` (None: not a vmgen section). ``machines`` are
    the names that ``[machine NAME]`` sections declare."""
    words = words_of(name)
    owner = None
    if len(words) >= 2 and words[0] in machines and words[1].lower() in KIND_WORDS \
            and words[1].lower() not in ("machine", "machines"):
        owner, words = words[0], words[1:]
    if not words or words[0].lower() not in KIND_WORDS:
        return None
    plain, labelled = KIND_WORDS[words[0].lower()]
    rest = words[1:]
    if not rest:
        return Path(owner, plain, None) if plain is not None else None
    dotted = not any(c.isspace() for c in name.strip())
    if labelled is None or (len(rest) > 1 and not dotted):
        return None
    return Path(owner, labelled, ".".join(rest))


def _text(text: str) -> str:
    flat = " ".join(text.split())
    if not flat:
        raise ValueError("it is empty")
    return flat


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        word = text.strip().lower()
        if word not in options:
            raise ValueError(f"not one of {', '.join(options)}")
        return word
    return parse


def _os(text: str) -> tuple[str, str | None]:
    """The operating system and, when the name carries it (``Windows 7``), its release."""
    words = text.strip().lower().split()
    if len(words) == 1 and words[0] in _OS_SPELLINGS:
        return _OS_SPELLINGS[words[0]]
    if not words or words[0] not in OPERATING_SYSTEMS:
        raise ValueError(f"not one of {', '.join(OPERATING_SYSTEMS)}")
    return words[0], " ".join(words[1:]) or None


def _release(text: str) -> str:
    word = "-".join(text.strip().lower().split())
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", word):
        raise ValueError("a release is letters, digits, dots and hyphens")
    return word


def _arch(text: str) -> str:
    word = text.strip().lower()
    if word not in AMD64:
        raise ValueError("Corral's templates and guests are x86_64")
    return word


def _mib(text: str) -> int:
    """A memory size: a plain number is MiB, units as Corral writes them."""
    return parse_size_mib(text)


def _gib(text: str) -> int:
    """A disk size in MiB: a plain number is GiB (disks are sized in gigabytes)."""
    stripped = text.strip()
    return parse_size_mib(f"{stripped}G" if re.fullmatch(r"\d+(\.\d+)?", stripped) else stripped)


def _bus(text: str) -> str:
    bus = _choice(BUSES)(text)
    if bus != "virtio":
        raise ValueError(f"Corral attaches disks as virtio disks; the {bus.upper()} bus "
                         "cannot be said")
    return bus


def _partitions(text: str) -> str:
    raise ValueError("a partition layout cannot be said in Corral: the disk is given "
                     "whole to the guest")


def _not_carried(what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        raise ValueError(f"{what} cannot be said in Corral")
    return parse


def _nameservers(text: str) -> tuple[str, ...]:
    return tuple(values.ipv4(word) for word in re.split(r"[,\s]+", text.strip()) if word)


def _address(text: str) -> str | ipaddress.IPv4Interface:
    """``dhcp``, an address, or an address with its prefix (``10.0.0.5/24``)."""
    word = text.strip().lower()
    if word == "dhcp":
        return word
    try:
        return ipaddress.IPv4Interface(word)
    except ValueError:
        raise ValueError("not dhcp nor an IPv4 address (with /PREFIX or not)") from None


def _items(text: str) -> tuple[str, ...]:
    """A list of applications: items separated by commas or line breaks (an item
    may be two words, as ``mail client``)."""
    return tuple(item for item in (" ".join(i.split()).lower()
                                   for i in re.split(r"[,\n]", text)) if item)


def _installer(text: str) -> str:
    return _choice(tuple(INSTALLERS))(text)


KEYS: dict[str, dict[str, Parser]] = {
    "machine": {"name": _text, "type": _choice(TYPES), "os": _os, "release": _release,
                "arch": _arch, "description": _text},
    "hardware": {"cpus": values.positive_int, "memory": _mib, "memory_limit": _mib,
                 "disk_size": _gib, "disk_limit": _gib},
    "disk": {"size": _gib, "type": _bus, "format": _choice(FORMATS),
             "partitions": _partitions},
    "network": {"nameservers": _nameservers, "gateway": values.ipv4},
    "interface": {"switch": values.name, "mode": _choice(MODES), "bridge": values.bridge,
                  "address": _address, "netmask": values.netmask, "gateway": values.ipv4,
                  "mac": values.mac},
    "users": {},  # every key is a user name
    "user": {"password": _text, "groups": _not_carried("a user's groups"),
             "shell": _not_carried("a user's shell")},
    "applications": {**{key: _items for key in APPLICATION_KEYS}, "installer": _installer},
}
ALIASES: dict[str, dict[str, str]] = {
    "machine": {"virtualization": "type", "version": "release", "hostname": "name"},
    "hardware": {"vcpus": "cpus", "cpu": "cpus", "ram": "memory", "maxmem": "memory_limit",
                 "disk": "disk_size"},
    "disk": {"bus": "type"},
    "network": {"nameserver": "nameservers", "dns": "nameservers"},
    "interface": {"type": "mode", "network": "switch", "ip": "address", "hwaddr": "mac"},
    "users": {},
    "user": {"passwd": "password"},
    "applications": {"packages": "install", "apps": "install"},
}


def canonical(kind: str, key: str) -> str:
    return ALIASES[kind].get(key, key)


def knows(kind: str, key: str) -> bool:
    """Whether a section of ``kind`` takes ``key`` (a ``[DEFAULT]`` key applies
    only to the sections that do)."""
    return canonical(kind, key) in KEYS[kind]


def settings(where: str, kind: str, entries: Iterable[Entry], warnings: Warnings) -> Settings:
    """The checked values of one section (``where`` names it in warnings): an
    unknown key, a value that is not one, two spellings of one key that disagree
    are warned at their line."""
    out: Settings = {}
    spelled: dict[str, Entry] = {}
    for entry in sorted(entries, key=lambda e: e.line):
        if kind == "users":
            _user_entry(where, entry, out, warnings)
            continue
        key = canonical(kind, entry.key)
        if key not in KEYS[kind]:
            known = ", ".join(KEYS[kind])
            warnings.add(entry.line, f"[{where}] key {entry.key} is not a vmgen key of this "
                         f"section ({known}): not carried over")
            continue
        earlier = spelled.get(key)
        if earlier is not None and " ".join(earlier.value.split()) != " ".join(
                entry.value.split()):
            warnings.add(entry.line, f"[{where}] {entry.key} = {entry.value} contradicts "
                         f"{earlier.key} = {earlier.value} (line {earlier.line}): the later "
                         "line wins")
        try:
            value = KEYS[kind][key](entry.value)
        except ValueError as error:
            warnings.add(entry.line, f"[{where}] {entry.key} = {entry.value}: {error}: "
                         "not carried over")
            continue
        out[key] = Setting(value, entry.line, entry.value)
        spelled[key] = entry
    return out


def _user_entry(where: str, entry: Entry, out: Settings, warnings: Warnings) -> None:
    """``NAME = PASSWORD`` of ``[users]``; ``root`` is root's password."""
    try:
        values.user_name(entry.key)
    except ValueError as error:
        warnings.add(entry.line, f"[{where}] {error}: not carried over")
        return
    problem = password_problem(entry.value.strip()) if entry.value.strip() else "it is empty"
    if problem is not None:
        warnings.add(entry.line, f"[{where}] password of {entry.key}: {problem}: not "
                     "carried over")
        return
    out[entry.key] = Setting(entry.value.strip(), entry.line, entry.value)


def packages(items: Iterable[tuple[str, int]], warnings: Warnings) -> list[str]:
    """Debian package names of the applications (each with its line): the paper's
    generic names mapped, other valid Debian names kept, the rest warned."""
    out: list[str] = []
    for item, line in items:
        for name in (item,) if item in APPLICATIONS else tuple(item.split()):
            mapped = APPLICATIONS.get(name)
            if isinstance(mapped, str):
                warnings.add(line, f"application {name}: {mapped}: not carried over")
                continue
            if mapped is None and not _DEBIAN_NAME.fullmatch(name):
                warnings.add(line, f"application {name!r} is neither one vmgen lists nor a "
                             "Debian package name: not carried over")
                continue
            out.extend(p for p in (mapped or (name,)) if p not in out)
    return out

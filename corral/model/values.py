"""Converters from one source word to one typed model value.

Each converter takes the word's text and returns the value or raises
:class:`ValueError` with a message that reads well after ``FILE:LINE:COL:``;
the builder turns that into a positioned diagnostic. Keeping them pure and
text-only makes them reusable by the site config and the plugins.
"""

from __future__ import annotations

import ipaddress
import re
import uuid as uuid_module

from corral.model.units import parse_size_mib

NAME_PATTERN = re.compile(r"[A-Za-z0-9-]+")
USER_PATTERN = re.compile(r"[a-z_][a-z0-9_-]*\$?")
MAC_PATTERN = re.compile(r"[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}")
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
BRIDGE_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,15}")
CPUSET_PATTERN = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")
BOOT_DEVICES = ("hd", "cdrom", "network")


def name(text: str) -> str:
    """Host, switch, superclass and project names: letters, digits, hyphens (MLN's rule)."""
    if not NAME_PATTERN.fullmatch(text):
        raise ValueError(f"invalid name '{text}': use letters, digits and hyphens only")
    return text


def user_name(text: str) -> str:
    if not USER_PATTERN.fullmatch(text) or len(text) > 32:
        raise ValueError(
            f"invalid user name '{text}': lower-case letters, digits, '_' and '-', "
            "starting with a letter"
        )
    return text


def size_mib(text: str) -> int:
    return parse_size_mib(text)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"'{text}' is not a positive whole number")
    return int(text)


def non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"'{text}' is not a whole number")
    return int(text)


def ipv4(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise ValueError(f"'{text}' is not an IPv4 address") from None


def netmask(text: str) -> str:
    """A dotted netmask (``255.255.255.0``) or a prefix length (``24``), as dotted."""
    try:
        return str(ipaddress.IPv4Network(f"0.0.0.0/{text}").netmask)
    except ValueError:
        raise ValueError(f"'{text}' is not a netmask (e.g. 255.255.255.0 or 24)") from None


def interface_address(text: str) -> str:
    """``dhcp``, ``auto`` (filled by autoenum) or an IPv4 address."""
    if text in ("dhcp", "auto"):
        return text
    try:
        return ipv4(text)
    except ValueError:
        raise ValueError(f"'{text}' is not an address: use dhcp, auto or an IPv4 address") from None


def network_cidr(text: str) -> str:
    """A switch's host-side address ``A.B.C.D/P``; the host part must not be 0 or broadcast."""
    try:
        iface = ipaddress.IPv4Interface(text)
    except ValueError:
        raise ValueError(f"'{text}' is not an address with prefix (e.g. 10.0.0.1/24)") from None
    if "/" not in text:
        raise ValueError(f"'{text}' needs a prefix length (e.g. {text}/24)")
    net = iface.network
    if net.prefixlen < 31 and iface.ip in (net.network_address, net.broadcast_address):
        raise ValueError(f"'{text}' is the network or broadcast address of {net}")
    return str(iface)


def mac(text: str) -> str:
    """A unicast MAC address, normalised to lower case with colons."""
    if not MAC_PATTERN.fullmatch(text):
        raise ValueError(f"'{text}' is not a MAC address (e.g. 52:54:00:12:34:56)")
    normal = text.lower().replace("-", ":")
    if int(normal[:2], 16) & 1:
        raise ValueError(f"'{text}' is a multicast MAC address; a NIC needs a unicast one")
    return normal


def uuid(text: str) -> str:
    """A domain UUID in its usual 8-4-4-4-12 hex form, normalised to lower case
    (libvirt prints lower case: an upper-case file would otherwise never match)."""
    if not UUID_PATTERN.fullmatch(text):
        raise ValueError(
            f"'{text}' is not a UUID (8-4-4-4-12 hex digits, e.g. "
            "bbdda922-8ee3-4ff8-874e-7c4e712dc4c7)"
        )
    return str(uuid_module.UUID(text))


def cpuset(text: str) -> str:
    """CPU pinning as libvirt writes it: ``0``, ``0,2``, ``0-3``."""
    if not CPUSET_PATTERN.fullmatch(text):
        raise ValueError(f"'{text}' is not a CPU list (e.g. 0,1 or 0-3)")
    for part in text.split(","):
        low, _, high = part.partition("-")
        if high and int(high) < int(low):
            raise ValueError(f"CPU range '{part}' runs backwards")
    return text


def boot_device(text: str) -> str:
    if text not in BOOT_DEVICES:
        raise ValueError(f"unknown boot device '{text}': use one of {', '.join(BOOT_DEVICES)}")
    return text


def volume_group(text: str) -> str:
    """An LVM volume group name, as LVM allows it (letters, digits, ``+_.-``)."""
    if not re.fullmatch(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}", text) or text in (".", ".."):
        raise ValueError(f"'{text}' is not an LVM volume group name")
    return text


def directory(text: str) -> str:
    """An absolute directory on the service host, normalised (no trailing slash)."""
    if not text.startswith("/") or "\0" in text:
        raise ValueError(f"'{text}' is not an absolute directory (e.g. /srv/vms)")
    parts = [p for p in text.split("/") if p and p != "."]
    if ".." in parts:
        raise ValueError(f"'{text}' must not contain '..'")
    return "/" + "/".join(parts)


def bridge(text: str) -> str:
    """An existing host bridge's name, as Linux names links (1-15 of ``A-Za-z0-9_.-``)."""
    if not BRIDGE_PATTERN.fullmatch(text):
        raise ValueError(
            f"'{text}' is not a bridge name (1-15 of A-Z a-z 0-9 _ . -, as Linux names links)"
        )
    return text


def image_file(text: str) -> str:
    """An absolute path of an existing image file on the service host, normalised."""
    if not text.startswith("/") or "\0" in text or text.endswith("/"):
        raise ValueError(f"'{text}' is not an absolute file path (e.g. /srv/images/data.img)")
    parts = [p for p in text.split("/") if p and p != "."]
    if ".." in parts:
        raise ValueError(f"'{text}' must not contain '..'")
    return "/" + "/".join(parts)


def on_off(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("on", "yes", "true", "1"):
        return True
    if lowered in ("off", "no", "false", "0"):
        return False
    raise ValueError(f"'{text}' is not on or off")


def text_value(text: str) -> str:
    return text

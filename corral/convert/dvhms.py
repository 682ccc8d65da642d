"""DVHMS (the VMware GSX distributed virtual host manager) XML into a Corral project.

The file is a ``VHMS`` element whose ``DHCP`` attribute is the management
server's DHCP address; ``IMGLIST`` holds the masters (``IMG``, a tar of a
suspended VM) and ``SRVLIST`` the host servers (``SRV``), each listing per
master (``VHI``) the run copies (``VHD``) with their MAC and IP. In Corral a
master is a registered template, a host server a service host, a run copy a
host, and the DHCP server's static leases are the static addresses of the
hosts on one switch whose ``address`` is the DHCP server's (Corral serves
DHCP there and gives each fixed MAC its address). The XML is parsed without
entities or network access: a DTD in the file is read, never followed.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from lxml import etree

from corral.convert.result import Conversion, Warnings
from corral.convert.writer import Stmt, block, name_of, render, stmt, template_name_of
from corral.errors import SourceErrors, Span
from corral.model import values

FORMAT = "dvhms"
SWITCH = "lan"
# The DVHMS paper's DHCP server hands out addresses of one private network; its
# netmask is not in the file, so a /24 around the DHCP server is assumed.
ASSUMED_PREFIX = 24
# ... unless the run copies' addresses need more, up to this (:func:`_widen_dhcp_network`).
WIDEST_PREFIX = 16
URI = "qemu+ssh://root@{address}/system"


@dataclass(slots=True)
class _Master:
    template: str
    line: int
    description: str = ""
    location: str = ""


@dataclass(slots=True)
class _Host:
    name: str
    line: int
    template: str
    service_host: str
    mac: str | None = None
    address: str | None = None
    comments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Read:
    """What the file says, as Corral will say it."""

    dhcp: ipaddress.IPv4Interface | None = None
    masters: dict[str, _Master] = field(default_factory=dict)
    servers: dict[str, tuple[str, int]] = field(default_factory=dict)  # name: (address, line)
    hosts: list[_Host] = field(default_factory=list)


def looks_like(text: str) -> bool:
    """A DVHMS file: XML whose root element is ``VHMS``."""
    head = text.lstrip()[:4096]
    return head.startswith("<") and "<VHMS" in head


def convert(text: str, file: str, stem: str) -> Conversion:
    """The Corral project (and site-config fragment) of DVHMS ``text``."""
    root = _parse(text, file)
    warnings = Warnings()
    read = _Read()
    _read_root(root, read, warnings)
    _widen_dhcp_network(read, warnings, _line(root))
    project = render(_header(file), _stanzas(stem, read, warnings))
    return Conversion(FORMAT, project, _site_config(read), warnings.done())


def _parse(text: str, file: str) -> etree._Element:
    """The root element; malformed XML is one error at its line. Blank lines before
    the XML declaration (as a document printing the file shows it) are skipped and
    counted, so lines still match the file."""
    stripped = text.lstrip()
    skipped = text[: len(text) - len(stripped)].count("\n")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(stripped.encode("utf-8"), parser)
    except etree.XMLSyntaxError as error:
        line = _number(error.lineno) + skipped
        raise SourceErrors.single(Span(file, line, 1),
                                  f"not well-formed DVHMS XML: {error.msg}") from None
    if skipped:
        for element in root.iter():
            element.sourceline = _number(element.sourceline) + skipped
    if root.tag != "VHMS":
        raise SourceErrors.single(Span(file, _line(root), 1),
                                  f"a DVHMS file's root element is VHMS, not {root.tag!s}")
    return root


def _number(value: object) -> int:
    """A line number lxml reports, or 1 where it has none."""
    return value if isinstance(value, int) and value > 0 else 1


def _line(element: etree._Element) -> int:
    return _number(element.sourceline)


def _elements(parent: etree._Element) -> Iterator[etree._Element]:
    """Child elements (comments, processing instructions and entities are not)."""
    for child in parent:
        if isinstance(child.tag, str):
            yield child


def _extra_attributes(element: etree._Element, known: set[str], warnings: Warnings) -> None:
    for name in element.attrib:
        if name not in known:
            warnings.add(_line(element), f"{element.tag!s} attribute {name!s} is not carried over")


def _read_root(root: etree._Element, read: _Read, warnings: Warnings) -> None:
    _extra_attributes(root, {"DHCP"}, warnings)
    dhcp = root.get("DHCP")
    if dhcp is None:
        warnings.add(_line(root), "VHMS has no DHCP attribute: the hosts' addresses are "
                     f"static in their seeds with an assumed /{ASSUMED_PREFIX} netmask")
    else:
        try:
            server = ipaddress.IPv4Interface(f"{dhcp.strip()}/{ASSUMED_PREFIX}")
        except ValueError:
            warnings.add(_line(root), f"DHCP {dhcp!r} is not an IPv4 address: no DHCP switch")
        else:
            if _usable(server.ip, server.network):
                read.dhcp = server
            else:
                warnings.add(_line(root), f"DHCP {dhcp} is the network or broadcast address "
                             f"of {server.network}: no DHCP switch")
    for child in _elements(root):
        if child.tag == "IMGLIST":
            for img in _elements(child):
                _read_master(img, read, warnings)
        elif child.tag == "SRVLIST":
            for srv in _elements(child):
                _read_server(srv, read, warnings)
        else:
            warnings.add(_line(child), f"element {child.tag} is not carried over")


def _read_master(img: etree._Element, read: _Read, warnings: Warnings) -> None:
    if img.tag != "IMG":
        warnings.add(_line(img), f"element {img.tag} in IMGLIST is not carried over")
        return
    _extra_attributes(img, {"ID"}, warnings)
    ident = img.get("ID")
    if not ident:
        warnings.add(_line(img), "IMG without ID is not carried over")
        return
    if ident in read.masters:
        warnings.add(_line(img), f"IMG {ident} is defined again (first at line "
                     f"{read.masters[ident].line}): this one is ignored")
        return
    master = _Master(template_name_of(ident), _line(img))
    for part in _elements(img):
        if part.tag == "DESCR":
            master.description = " ".join((part.text or "").split())
        elif part.tag == "LOC":
            master.location = part.get("URL") or ""
        else:
            warnings.add(_line(part), f"element {part.tag} in IMG is not carried over")
    read.masters[ident] = master


def _read_server(srv: etree._Element, read: _Read, warnings: Warnings) -> None:
    if srv.tag != "SRV":
        warnings.add(_line(srv), f"element {srv.tag} in SRVLIST is not carried over")
        return
    _extra_attributes(srv, {"ID", "IP", "MIR", "RUN"}, warnings)
    ident, address = srv.get("ID"), srv.get("IP")
    if not ident or not address:
        warnings.add(_line(srv), "SRV needs ID and IP: it and its run copies are not "
                     "carried over")
        return
    name = name_of(ident, "server")
    if name != ident:
        warnings.add(_line(srv), f"SRV {ident!r} becomes service host {name}")
    if name in read.servers:
        warnings.add(_line(srv), f"SRV {ident} is listed again (first at line "
                     f"{read.servers[name][1]}): its run copies go to that one")
    else:
        read.servers[name] = (address, _line(srv))
    for where in ("MIR", "RUN"):
        if srv.get(where):
            warnings.add(_line(srv), f"SRV {ident} {where}={srv.get(where)!r} is not carried "
                         "over: Corral keeps templates and run copies in its own storage")
    for vhi in _elements(srv):
        if vhi.tag != "VHI":
            warnings.add(_line(vhi), f"element {vhi.tag} in SRV is not carried over")
            continue
        _read_instances(vhi, name, read, warnings)


def _read_instances(vhi: etree._Element, server: str, read: _Read, warnings: Warnings) -> None:
    _extra_attributes(vhi, {"ID"}, warnings)
    ident = vhi.get("ID") or ""
    master = read.masters.get(ident)
    if master is None:
        warnings.add(_line(vhi), f"VHI {ident!r} names no IMG of IMGLIST: its run copies "
                     "use a template of that name, which must be registered")
    template = master.template if master is not None else template_name_of(ident)
    for vhd in _elements(vhi):
        if vhd.tag != "VHD":
            warnings.add(_line(vhd), f"element {vhd.tag} in VHI is not carried over")
            continue
        _extra_attributes(vhd, {"RID", "MAC", "IP"}, warnings)
        rid = vhd.get("RID")
        if not rid:
            warnings.add(_line(vhd), "VHD without RID is not carried over")
            continue
        host = _Host(name_of(rid, "host"), _line(vhd), template, server)
        if host.name != rid:
            warnings.add(host.line, f"VHD {rid!r} becomes host {host.name}")
        host.mac = _mac(vhd, warnings)
        host.address = _address(vhd, warnings)
        read.hosts.append(host)


def _mac(vhd: etree._Element, warnings: Warnings) -> str | None:
    mac = vhd.get("MAC")
    if mac is None:
        return None
    try:
        return values.mac(mac.strip())
    except ValueError:
        warnings.add(_line(vhd), f"MAC {mac!r} is not a MAC address: Corral derives one")
        return None


def _address(vhd: etree._Element, warnings: Warnings) -> str | None:
    address = vhd.get("IP")
    if address is None:
        return None
    try:
        return str(ipaddress.IPv4Address(address.strip()))
    except ValueError:
        warnings.add(_line(vhd), f"IP {address!r} is not an IPv4 address: the host uses DHCP")
        return None


def _header(file: str) -> list[str]:
    return [
        f"Converted by `corral convert` from the DVHMS configuration {file}.",
        "Masters are templates, host servers are service hosts (see the site-config",
        "fragment), run copies are hosts with their MAC and address on one switch",
        "whose DHCP server gives each of them its address as a static lease.",
    ]


def _stanzas(stem: str, read: _Read, warnings: Warnings) -> list[Stmt]:
    stanzas = [block(["global"], [stmt("project", name_of(stem, "converted"))])]
    if read.masters:
        stanzas[0] = block(["global"], [stmt("project", name_of(stem, "converted"))],
                           comments=_master_comments(read))
    if read.dhcp is not None:
        stanzas.append(block(["switch", SWITCH], [stmt("address", str(read.dhcp))], comments=[
            "The DHCP server of the DVHMS file; its netmask is assumed "
            f"(/{read.dhcp.network.prefixlen}).",
        ]))
    else:
        stanzas.append(block(["switch", SWITCH], []))
    seen: dict[str, int] = {}
    macs: dict[str, str] = {}
    addresses: dict[str, str] = {
        str(read.dhcp.ip): "the DHCP server"} if read.dhcp is not None else {}
    servers = {address: f"host server {name}" for name, (address, _) in read.servers.items()}
    for host in read.hosts:
        if host.name in seen:
            warnings.add(host.line, f"run copy {host.name} is listed again (first at line "
                         f"{seen[host.name]}): this one is not carried over")
            continue
        seen[host.name] = host.line
        stanzas.append(_host(host, read, macs, addresses, servers, warnings))
    return stanzas


def _master_comments(read: _Read) -> list[str]:
    lines = ["Templates to register (the DVHMS masters are suspended GSX VMs in tar files;",
             "convert each one's disk to an image first):"]
    for master in read.masters.values():
        about = f" ({master.description})" if master.description else ""
        lines.append(f"  {master.template}{about}: from {master.location or 'no location'}")
        lines.append(f"    corral template add {master.template} IMAGE")
    return lines


def _host(host: _Host, read: _Read, macs: dict[str, str], addresses: dict[str, str],
          servers: dict[str, str], warnings: Warnings) -> Stmt:
    interface: list[Stmt] = [stmt("switch", SWITCH)]
    if host.mac is not None:
        if host.mac in macs:
            warnings.add(host.line, f"MAC {host.mac} of {host.name} is also {macs[host.mac]}'s: "
                         "Corral derives one for this host")
        else:
            macs[host.mac] = host.name
            interface.append(stmt("mac", host.mac))
    interface.extend(_address_statements(host, read, addresses, servers, warnings))
    body = [stmt("template", host.template), stmt("service_host", host.service_host),
            block(["network", "eth0"], interface)]
    return block(["host", host.name], body)


def _widen_dhcp_network(read: _Read, warnings: Warnings, line: int) -> None:
    """Assume a wider network than /24 around the DHCP server when the run copies'
    addresses need one (a /24 holds 253 of them; DVHMS ran hundreds): the
    narrowest network, down to /16, that holds every run copy's address within
    that /16, said once as a warning at the ``VHMS`` element."""
    if read.dhcp is None:
        return
    widest = ipaddress.IPv4Interface(f"{read.dhcp.ip}/{WIDEST_PREFIX}").network
    wanted = [a for host in read.hosts if host.address is not None
              and (a := ipaddress.IPv4Address(host.address)) in widest]
    prefix = ASSUMED_PREFIX
    while prefix > WIDEST_PREFIX:
        network = ipaddress.IPv4Interface(f"{read.dhcp.ip}/{prefix}").network
        if all(_usable(address, network) for address in wanted):
            break
        prefix -= 1
    if prefix == ASSUMED_PREFIX:
        return
    read.dhcp = ipaddress.IPv4Interface(f"{read.dhcp.ip}/{prefix}")
    warnings.add(line, f"the run copies' addresses do not fit a /{ASSUMED_PREFIX} around the "
                 f"DHCP server: its network is assumed {read.dhcp.network}, the narrowest "
                 "that holds them")


def _address_statements(host: _Host, read: _Read, addresses: dict[str, str],
                        servers: dict[str, str], warnings: Warnings) -> list[Stmt]:
    if host.address is None:
        return [stmt("address", "dhcp")]
    if host.address in servers:
        warnings.add(host.line, f"{host.name}'s IP {host.address} is also the address of "
                     f"{servers[host.address]}: kept, but the two clash on one network")
    if host.address in addresses:
        warnings.add(host.line, f"{host.name}'s IP {host.address} is also "
                     f"{addresses[host.address]}'s: this host uses DHCP instead")
        return [stmt("address", "dhcp")]
    address = ipaddress.IPv4Address(host.address)
    if read.dhcp is not None:
        if not _usable(address, read.dhcp.network):
            warnings.add(host.line, f"{host.name}'s IP {host.address} is outside the DHCP "
                         f"server's network {read.dhcp.network}: this host uses DHCP instead")
            return [stmt("address", "dhcp")]
        addresses[host.address] = host.name
        return [stmt("address", host.address)]
    assumed = ipaddress.IPv4Interface(f"{address}/{ASSUMED_PREFIX}").network
    if not _usable(address, assumed):
        warnings.add(host.line, f"{host.name}'s IP {host.address} is the network or broadcast "
                     f"address of {assumed}: this host uses DHCP instead")
        return [stmt("address", "dhcp")]
    addresses[host.address] = host.name
    return [stmt("address", host.address), stmt("netmask", str(ASSUMED_PREFIX))]


def _usable(address: ipaddress.IPv4Address, network: ipaddress.IPv4Network) -> bool:
    """An address a machine of ``network`` may hold (not its network or broadcast)."""
    return address in network and address not in (network.network_address,
                                                   network.broadcast_address)


def _site_config(read: _Read) -> str | None:
    """The service hosts of the SRV elements, reached as root over SSH at their IP
    (DVHMS ran its own commands there as root); change the URI to suit the site."""
    if not read.servers:
        return None
    lines = ["# Service hosts of the DVHMS host servers (SRV elements), reached over SSH",
             "# as root at the address the file gives; adjust the URI to the site."]
    for name, (address, _) in read.servers.items():
        uri = json.dumps(URI.format(address=address))  # a TOML basic string
        lines += ["", f"[service_hosts.{name}]", f"uri = {uri}"]
    return "\n".join(lines) + "\n"

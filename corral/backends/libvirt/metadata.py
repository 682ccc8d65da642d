"""Corral's marks on libvirt objects, written at creation and read back by observe.

Domains carry a ``<corral:corral>`` element in ``<metadata>`` (namespace
:data:`NS`): project, host, model hash, template, service host, the MACs of the
NICs Corral manages, whether Corral manages the VNC display, and the host
model as JSON (so a plan can say *what* changed). When Corral starts a
domain it adds the start time (``<corral:started>``) to the mark in the live
definition only, so it vanishes when the domain stops and ``status`` reads
mark and uptime in one call per domain. Domains started by earlier versions
keep it in a second namespace, :data:`RUNTIME_NS`, still read.

Networks: libvirt 9.0 has no network ``<metadata>``; a DNS TXT record would
survive only on networks that allow ``<dns>`` (not ``forward mode='bridge'``),
and ``<domain>`` likewise. A ``<portgroup>`` is accepted and kept by every
forward mode, and is inert unless a guest NIC names it, so the marks live in
the name of one portgroup::

    corral-mark.v2.<base64url of the JSON {"project", "switch", "hash", "model": {...}}>

A network that joins a switch spanning several service hosts through the
site bridge also records ``"site_bridge": NAME``, so a plan can tell a
single-host network from a cross-host one although the switch is the same.

libvirt's schema types a portgroup name as ``deviceName``, the pattern
``[a-zA-Z0-9_.\\:/-]+`` with no length limit, and base64url without padding
uses only ``[A-Za-z0-9_-]``, so the name validates and needs no XML escaping
(libvirt 9.0 does not escape ``&`` in portgroup names in a running network's
status XML). Marks written by earlier versions,
``corral-meta;project=P;switch=S;hash=H;model=<JSON>`` with percent-encoded
values, are still read; :func:`is_current_network_mark` tells ``ensure`` to
replace them.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from urllib.parse import unquote

from lxml import etree
from pydantic import ValidationError

from corral.model import Host, Switch
from corral.model.project import PROVENANCE

NS = "https://corral.dev/xmlns/1"
RUNTIME_NS = "https://corral.dev/xmlns/1/runtime"
PREFIX = "corral"
RUNTIME_PREFIX = "corral-run"
PORTGROUP_MARK = "corral-mark.v2."
LEGACY_PORTGROUP_MARK = "corral-meta"


def q(tag: str) -> str:
    """Clark name of a tag in Corral's namespace."""
    return f"{{{NS}}}{tag}"


@dataclass(frozen=True, slots=True)
class DomainMark:
    """What Corral records on a domain."""

    project: str
    host: str
    model_hash: str
    template: str | None
    service_host: str
    nic_macs: tuple[str, ...] = ()
    manages_vnc: bool = False
    model_json: str | None = None
    disk_serials: tuple[str, ...] = ()  # the extra disks Corral manages
    started: float | None = None  # live mark only: when Corral started this run

    def model(self) -> Host | None:
        """The recorded host model, or None when missing or unreadable."""
        if not self.model_json:
            return None
        try:
            return Host.model_validate_json(self.model_json)
        except ValidationError:
            return None


def _compact_json(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def host_model_json(host: Host) -> str:
    """The host model as recorded in metadata, without its provenance (its source
    position, the superclasses it inherits, its groups): the metadata is rewritten
    only when the model hash changes, and the hash leaves provenance out."""
    return _compact_json(host.recorded_dump(exclude=set(PROVENANCE)))


def domain_mark_element(mark: DomainMark) -> etree._Element:
    """The ``<corral:corral>`` element for ``mark``."""
    root = etree.Element(q("corral"), nsmap={PREFIX: NS})
    for tag, value in (
        ("project", mark.project),
        ("host", mark.host),
        ("hash", mark.model_hash),
        ("template", mark.template),
        ("service-host", mark.service_host),
    ):
        if value is not None:
            etree.SubElement(root, q(tag)).text = value
    for mac in mark.nic_macs:
        etree.SubElement(root, q("nic"), mac=mac)
    for serial in mark.disk_serials:
        etree.SubElement(root, q("disk"), serial=serial)
    if mark.manages_vnc:
        etree.SubElement(root, q("vnc"))
    if mark.model_json:
        etree.SubElement(root, q("model")).text = mark.model_json
    if mark.started is not None:
        etree.SubElement(root, q("started")).text = f"{mark.started:.3f}"
    return root


def parse_domain_mark(element: etree._Element) -> DomainMark | None:
    """Read a ``<corral:corral>`` element back; None when it lacks project or host."""

    # virDomainGetMetadata hands the element back without its namespace, so
    # children are matched by local name in any namespace (or none). One pass
    # over the children: status parses a mark per domain.
    texts: dict[str, str] = {}
    macs: list[str] = []
    serials: list[str] = []
    vnc = False
    for child in element.iterchildren("*"):  # elements only, in any namespace
        local = child.tag.rpartition("}")[2]
        if local == "nic":
            macs.append(child.get("mac", "").lower())
        elif local == "disk":
            serials.append(child.get("serial", ""))
        elif local == "vnc":
            vnc = True
        elif local not in texts and child.text:
            texts[local] = child.text
    project, host = texts.get("project"), texts.get("host")
    if not project or not host:
        return None
    return DomainMark(
        project=project,
        host=host,
        model_hash=texts.get("hash") or "",
        template=texts.get("template"),
        service_host=texts.get("service-host") or "",
        nic_macs=tuple(macs),
        manages_vnc=vnc,
        model_json=texts.get("model"),
        disk_serials=tuple(serials),
        started=_float(texts.get("started")),
    )


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def with_started(xml: str, started: float | None) -> str | None:
    """A mark as ``virDomainGetMetadata`` returns it, with its start time set to
    ``started`` (removed for None), ready for ``virDomainSetMetadata``; None when
    ``xml`` is not a Corral mark. Everything else in the mark is kept as it is."""
    try:
        element = etree.fromstring(xml.encode())
    except etree.XMLSyntaxError:
        return None
    if parse_domain_mark(element) is None:
        return None
    for old in element.findall("{*}started"):
        element.remove(old)
    if started is not None:
        etree.SubElement(element, "started").text = f"{started:.3f}"
    return without_namespaces(element)


def parse_domain_mark_xml(xml: str) -> DomainMark | None:
    """Parse the string libvirt's ``virDomainGetMetadata`` returns."""
    try:
        element = etree.fromstring(xml.encode())
    except etree.XMLSyntaxError:
        return None
    return parse_domain_mark(element)


def runtime_xml(started: float) -> str:
    """The live-only runtime element: when Corral started the domain (epoch seconds).

    Un-namespaced: ``virDomainSetMetadata`` puts it in :data:`RUNTIME_NS` itself.
    """
    root = etree.Element("runtime")
    etree.SubElement(root, "started").text = f"{started:.3f}"
    return etree.tostring(root, encoding="unicode")


def without_namespaces(element: etree._Element) -> str:
    """``element`` serialised with plain tags, as ``virDomainSetMetadata`` wants it."""
    copy = etree.fromstring(etree.tostring(element))
    for node in copy.iter():
        node.tag = etree.QName(node).localname
    etree.cleanup_namespaces(copy)
    return etree.tostring(copy, encoding="unicode")


def parse_started(xml: str) -> float | None:
    """The start time in a runtime element, or None."""
    try:
        root = etree.fromstring(xml.encode())
    except etree.XMLSyntaxError:
        return None
    found = root.find("{*}started")
    try:
        return float(found.text) if found is not None and found.text else None
    except ValueError:
        return None


# --------------------------------------------------------------------------- networks


@dataclass(frozen=True, slots=True)
class NetworkMark:
    """What Corral records on a network (in a portgroup name)."""

    project: str
    switch: str
    model_hash: str
    model_json: str | None = None
    # the site bridge the network joins when its switch spans several service hosts
    site_bridge: str | None = None

    def model(self) -> Switch | None:
        if not self.model_json:
            return None
        try:
            return Switch.model_validate_json(self.model_json)
        except ValidationError:
            return None


def switch_model_json(switch: Switch) -> str:
    return _compact_json(switch.model_dump(mode="json", exclude={"origin"}))


def encode_network_mark(mark: NetworkMark) -> str:
    """The portgroup name that carries ``mark`` (only ``[A-Za-z0-9_.-]``)."""
    fields: dict[str, object] = {
        "project": mark.project, "switch": mark.switch, "hash": mark.model_hash
    }
    if mark.model_json:
        try:  # nested as an object: a JSON string inside JSON would escape every quote
            fields["model"] = json.loads(mark.model_json)
        except ValueError:
            fields["model"] = mark.model_json
    if mark.site_bridge:
        fields["site_bridge"] = mark.site_bridge
    payload = base64.urlsafe_b64encode(_compact_json(fields).encode()).rstrip(b"=")
    return PORTGROUP_MARK + payload.decode("ascii")


def decode_network_mark(name: str) -> NetworkMark | None:
    """Read a portgroup name back (this or the legacy format); None when it is
    not Corral's mark."""
    if name.startswith(PORTGROUP_MARK):
        return _decode_current(name[len(PORTGROUP_MARK):])
    if name.split(";", 1)[0] == LEGACY_PORTGROUP_MARK:
        return _decode_legacy(name)
    return None


def is_current_network_mark(name: str) -> bool:
    """True when ``name`` is a mark in the format this version writes."""
    return name.startswith(PORTGROUP_MARK) and decode_network_mark(name) is not None


def _decode_current(payload: str) -> NetworkMark | None:
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        values = json.loads(raw.decode())
    except (binascii.Error, ValueError):
        return None
    if not isinstance(values, dict):
        return None
    if isinstance(values.get("model"), dict):
        values["model"] = _compact_json(values["model"])
    return _mark_from(values)


def _decode_legacy(name: str) -> NetworkMark | None:
    values: dict[str, object] = {}
    for part in name.split(";")[1:]:
        key, sep, value = part.partition("=")
        if sep:
            values[key] = unquote(value)
    return _mark_from(values)


def _mark_from(values: dict[str, object]) -> NetworkMark | None:
    def text(key: str) -> str | None:
        value = values.get(key)
        return value if isinstance(value, str) else None

    project, switch = text("project"), text("switch")
    if not project or not switch:
        return None
    return NetworkMark(
        project=project, switch=switch, model_hash=text("hash") or "", model_json=text("model"),
        site_bridge=text("site_bridge"),
    )


def mark_portgroups(xml_root: etree._Element) -> list[etree._Element]:
    """The ``<portgroup>`` elements of a parsed network XML that carry a Corral mark."""
    return [
        group for group in xml_root.findall("portgroup")
        if decode_network_mark(group.get("name", "")) is not None
    ]


def network_mark_of(xml_root: etree._Element) -> NetworkMark | None:
    """The Corral mark of a parsed network XML, if it has one."""
    for group in xml_root.findall("portgroup"):
        mark = decode_network_mark(group.get("name", ""))
        if mark is not None:
            return mark
    return None

"""Every key the language accepts changes what Corral builds, or is refused.

For each key of every key table in :mod:`corral.model.schema` the table
below gives a variant of a small base project; the test builds both on a
fresh libvirt test driver and compares what came out: domain and network
XML (without Corral's own marks), pools and volumes with their sizes,
autostart, the NoCloud seed documents, the domain type asked for, and what
readiness waits for. A variant must change one of them, or be refused with
an error. A key added to the schema without an entry here fails the test,
and so does a key whose variant changes nothing: no key may be inert.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from corral.config import parse_site_config
from corral.errors import CorralError
from corral.images.seed import seed_documents
from corral.model import schema
from corral.ops import projects
from corral.ops.apply import requested_virt
from corral.ops.session import Session

SITE = """
[defaults]
virt_type = "auto"

[paths]
templates = "{root}/templates"
state = "{root}/state.db"
runs = "{root}/runs"

[service_hosts.local]
uri = "test://{root}/node.xml"

[service_hosts.other]
uri = "test://{root}/node.xml"
"""

BASE = """\
global {{
    project {project}
{global_extra}}}
switch s {{
    address 10.50.0.1/24
{switch_s}}}
switch t {{
{switch_t}}}
host h {{
    template {template}
{flag}{host}    network eth0 {{
        switch {switch}
        address {address}
{iface}    }}
}}
"""


@dataclass(frozen=True)
class Variant:
    """A change to the base project; ``base`` overrides the base itself for this key."""

    change: dict[str, str]
    base: dict[str, str] = field(default_factory=dict)
    refused: bool = False  # True when this variant must be refused (the key acts by refusing)


def lines(*text: str) -> str:
    return "".join(f"    {t}\n" for t in text)


def nested(*text: str) -> str:
    return "".join(f"        {t}\n" for t in text)


DEFAULTS = {
    "project": "walk", "global_extra": "", "switch_s": "", "switch_t": "", "template": "base",
    "flag": "", "host": "", "switch": "s", "address": "10.50.0.10", "iface": "",
}
ON_T = {"switch": "t", "address": "10.60.0.5"}

HOST = {
    "kvm": Variant({"flag": lines("kvm")}, base={"flag": lines("qemu")}),
    "qemu": Variant({"flag": lines("qemu")}),
    "xen": Variant({"flag": lines("xen")}, refused=True),
    "vmware": Variant({"flag": lines("vmware")}, refused=True),
    "uml": Variant({"flag": lines("uml")}, refused=True),
    "lxc": Variant({"flag": lines("lxc")}, refused=True),
    "uuid": Variant({"host": lines("uuid bbdda922-8ee3-4ff8-874e-7c4e712dc4c7")}),
    "template": Variant({"template": "dual"}),
    "memory": Variant({"host": lines("memory 256M")}),
    "maxmem": Variant({"host": lines("maxmem 512M")}),
    "vcpus": Variant({"host": lines("vcpus 2")}),
    "maxvcpus": Variant({"host": lines("maxvcpus 4")}),
    "cpus": Variant({"host": lines("cpus 0")}),
    "size": Variant({"host": lines("size 2G")}),
    "free_space": Variant({"host": lines("free_space 1G")}),
    "service_host": Variant({"host": lines("service_host other")}),
    "nameserver": Variant({"host": lines("nameserver 10.50.0.1")}),
    "network": Variant({"host": lines("network eth1 { switch t }")}),
    "disk": Variant({"host": lines("disk data { size 1G }")}),
    "users": Variant({"host": lines("users { alice secret }")}),
    "root_passwd": Variant({"host": lines("root_passwd secret")}),
    "vncdisplay": Variant({"host": lines("vncdisplay 7")}),
    "vncpasswd": Variant({"host": lines("vncpasswd secret")}),
    "hvm": Variant({"host": lines("hvm")}, base={"template": "dual"}),
    "lvm": Variant({"host": lines("lvm")}, refused=True),  # no volume group anywhere
    "lvm_vg": Variant({"host": lines("lvm_vg vg0")}, refused=True),  # the test host has none
    "filepath": Variant({"host": lines("filepath /srv/vms")}),
    "boot": Variant({"host": lines("boot network hd")}),
    "autostart": Variant({"host": lines("autostart yes")}),
    "packages": Variant({"host": lines("packages vim")}),
    "runcmd": Variant({"host": lines("runcmd touch /x")}),
    "wait": Variant({"host": lines("wait none")}),
}
INTERFACE = {
    "switch": Variant({"switch": "t"}, base={"address": "dhcp"}),
    "bridge": Variant({"host": lines("network eth1 { bridge br-walk }")},
                      base={"host": lines("network eth1 { }")}),
    "address": Variant({"address": "10.50.0.11"}),
    "netmask": Variant({"iface": nested("netmask 255.255.0.0")}, base=ON_T),
    "gateway": Variant({"iface": nested("gateway 10.50.0.1")}),
    "mac": Variant({"iface": nested("mac 52:54:00:12:34:56")}),
}
DISK = {
    "size": Variant(
        {"host": lines("disk data { size 2G }")}, base={"host": lines("disk data { size 1G }")}
    ),
    "type": Variant(
        {"host": lines("disk data {", "    size 1G", "    type raw", "}")},
        base={"host": lines("disk data { size 1G }")},
    ),
    "path": Variant(
        {"host": lines("disk data { path /srv/walk/data.img }")},
        base={"host": lines("disk data { size 1G }")},
    ),
}
WAIT = {
    "kind": Variant({"host": lines("wait { kind none }")}),
    "timeout": Variant({"host": lines("wait { timeout 30 }")}),
}
SWITCH = {
    # A hypervisor flag on a switch admits only hosts of that kind (MLN's `switch lan { vmware }`).
    **{
        flag: Variant({"switch_s": lines(flag)}, base={"flag": lines("qemu")}, refused=True)
        for flag in ("kvm", "xen", "vmware", "uml", "lxc")
    },
    "qemu": Variant({"switch_s": lines("qemu")}, base={"flag": lines("kvm")}, refused=True),
    "address": Variant({"switch_t": lines("address 10.70.0.1/24")}),
    "nat": Variant({"switch_t": lines("address 10.70.0.1/24", "nat")},
                   base={"switch_t": lines("address 10.70.0.1/24")}),
    "route": Variant({"switch_t": lines("address 10.70.0.1/24", "route")},
                     base={"switch_t": lines("address 10.70.0.1/24")}),
    "bridge": Variant({"switch_t": lines("bridge br-walk")}),
    "dhcp": Variant({"switch_s": lines("dhcp off")}),
    "service_host": Variant({"switch_t": lines("service_host other")}),
}
GLOBAL = {"project": Variant({"project": "walk2"})}

TABLES = {
    "host": (schema.HOST_KEYS, HOST),
    "interface": (schema.INTERFACE_KEYS, INTERFACE),
    "disk": (schema.DISK_KEYS, DISK),
    "wait": (schema.WAIT_KEYS, WAIT),
    "switch": (schema.SWITCH_KEYS, SWITCH),
    "global": (schema.GLOBAL_KEYS, GLOBAL),
}
CASES = [(table, key) for table, (_, variants) in TABLES.items() for key in variants]


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_key_of_the_schema_has_a_variant(table: str) -> None:
    keys, variants = TABLES[table]
    assert sorted(keys) == sorted(variants), f"{table} keys without a variant here"


@pytest.fixture(scope="module")
def site_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("walk")
    (root / "node.xml").write_text(
        '<node><interface type="bridge" name="br-walk"><start mode="onboot"/>'
        '<bridge stp="off"/></interface>'
        '<pool type="dir"><name>images</name><target><path>/srv/walk</path></target>'
        '<volume type="file"><name>data.img</name><capacity unit="M">16</capacity>'
        '<target><format type="raw"/></target></volume></pool></node>\n'
    )
    (root / "corral.toml").write_text(SITE.format(root=root))
    site = parse_site_config((root / "corral.toml").read_text(), root / "corral.toml")
    session = Session(site)
    base = root / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
    session.registry.add("base", base)
    kernel = root / "vmlinuz"
    kernel.write_bytes(b"\x7fkernel")
    session.registry.add(
        "dual", base, kernel=kernel, cmdline="console=ttyS0", disk_boots=True
    )
    session.close()
    return root


_INSTANCE = re.compile(r"^instance-id: .*$", re.MULTILINE)


def _clean(xml: str) -> str:
    """The XML without what records rather than configures: Corral's marks (they
    hold the whole model, so they differ for every key) and libvirt's UUID."""
    root = etree.fromstring(xml.encode())
    doomed = [*root.findall("uuid"), *root.findall("metadata")]
    doomed += [p for p in root.findall("portgroup") if p.get("name", "").startswith("corral")]
    for element in doomed:
        root.remove(element)
    return etree.tostring(root, encoding="unicode")


def effects(root: Path, text: str) -> dict[str, object] | str:
    """Everything the project builds, or ``"refused: ..."``."""
    path = root / "walk.corral"
    path.write_text(text)
    site = parse_site_config((root / "corral.toml").read_text(), root / "corral.toml")
    session = Session(site)  # a new session: fresh, empty test-driver state
    try:
        try:
            project = projects.load_source(path, site)
            projects.build(session, path)
        except CorralError as error:
            return f"refused: {error.message}"
        found: dict[str, object] = {}
        for name in site.service_hosts:
            conn = session.backend(name).conn
            inactive = libvirt.VIR_DOMAIN_XML_INACTIVE
            found[name] = {
                "domains": {
                    d.name(): (_clean(d.XMLDesc(inactive)), d.autostart())
                    for d in conn.listAllDomains(0)
                },
                "networks": {n.name(): _clean(n.XMLDesc(0)) for n in conn.listAllNetworks(0)},
                "volumes": sorted(
                    (p.name(), v.name(), v.info()[1])
                    for p in conn.listAllStoragePools(0)
                    for v in p.listAllVolumes(0)
                ),
            }
        found["seeds"] = {
            h.name: {k: _INSTANCE.sub("", v) for k, v in seed_documents(h, project.name)
                     .by_name().items()}
            for h in project.hosts.values()
        }
        # libvirt's UUID is left out of the XML above (it differs every build);
        # a host's own uuid is the domain's UUID, so that one is compared.
        wanted = {h.uuid for h in project.hosts.values()}
        found["uuids"] = sorted(
            d.UUIDString() for name in site.service_hosts
            for d in session.backend(name).conn.listAllDomains(0) if d.UUIDString() in wanted
        )
        found["requested"] = {h.name: requested_virt(session, h) for h in project.hosts.values()}
        found["readiness"] = {h.name: h.wait.model_dump() for h in project.hosts.values()}
        return found
    finally:
        session.close()


def project_text(variant: Variant, *, changed: bool) -> str:
    values = {**DEFAULTS, **variant.base, **(variant.change if changed else {})}
    return BASE.format(**values)


@pytest.mark.parametrize(("table", "key"), CASES, ids=[f"{t}.{k}" for t, k in CASES])
def test_key_changes_the_build_or_is_refused(site_root: Path, table: str, key: str) -> None:
    variant = TABLES[table][1][key]
    before = effects(site_root, project_text(variant, changed=False))
    assert not isinstance(before, str), f"the base of {table}.{key} must build: {before}"
    after = effects(site_root, project_text(variant, changed=True))
    if variant.refused:
        assert isinstance(after, str) and after.startswith("refused"), after
    else:
        assert not isinstance(after, str), after
        assert after != before, f"{table}.{key} changed nothing that Corral builds"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"host": lines("hvm")},
         "hvm changes nothing: template base boots from its disk through the firmware already"),
        ({"host": lines("boot hd"), "template": "direct"},
         "boot order applies to firmware boot, and template direct boots its kernel directly"),
        ({"host": lines("hvm"), "template": "direct"},
         "hvm needs a template whose disk boots; direct boots its kernel directly"),
        ({"host": lines("lvm")}, "host h: lvm needs a volume group"),
        ({"host": lines("lvm_vg vg0")},
         "host h: service host local has no LVM volume group 'vg0'"),
    ],
)
def test_keys_that_cannot_act_here_are_refused_with_the_reason(
    site_root: Path, change: dict[str, str], message: str
) -> None:
    session = Session(
        parse_site_config((site_root / "corral.toml").read_text(), site_root / "corral.toml")
    )
    if "direct" not in session.registry.names():
        session.registry.add(
            "direct", site_root / "base.qcow2", kernel=site_root / "vmlinuz", cmdline="x"
        )
    session.close()
    refused = effects(site_root, project_text(Variant(change), changed=True))
    assert isinstance(refused, str) and message in refused, refused

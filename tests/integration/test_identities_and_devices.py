"""A fixed UUID, a NIC on an existing host bridge and an existing image attached
as a disk, on the real libvirtd, seen from the tiny guest.

The domain is defined with the host's UUID and keeps it through ``upgrade``;
the guest answers on its static address through the bridge (which Corral
neither made nor removes); it reads what the image file holds, by the disk's
serial; ``remove`` leaves the image byte for byte as it was, and the bridge.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from corral.ops import projects
from corral.plan import ActionKind

from .guest_console import GuestConsole
from .support import (
    URI,
    Site,
    libvirt_objects,
    node_superclass,
    ping,
    project_name,
    remove_project,
    write_project,
)

pytestmark = pytest.mark.libvirt


@pytest.fixture
def host_bridge() -> Iterator[tuple[str, ipaddress.IPv4Network]]:
    """A Linux bridge with an address on a /24 no route of this machine covers yet;
    deleted after the test."""
    for _ in range(50):
        net = ipaddress.IPv4Network(f"10.213.{secrets.randbelow(250) + 2}.0/24")
        routes = subprocess.run(["ip", "-4", "route", "show", "match", str(net[1])],
                                capture_output=True, text=True, check=True).stdout
        if "10.213." not in routes:
            break
    name = f"cfid{secrets.token_hex(4)}"
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{net[1]}/24", "dev", name], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield name, net
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


def project_text(name: str, fixed: str, bridge: str, address: str, image: Path,
                 memory: str) -> str:
    return f"""\
global {{
    project {name}
}}
{node_superclass(memory)}
host fixed {{
    superclass node
    uuid {fixed.upper()}
    network eth0 {{
        bridge {bridge}
        address {address}
        netmask 24
    }}
    disk root {{ path {image} }}
    disk scratch {{
        size 16M
        type raw
    }}
}}
"""


def _domain(name: str) -> tuple[str, etree._Element]:
    conn = libvirt.open(URI)
    try:
        domain = conn.lookupByName(name)
        return domain.UUIDString(), etree.fromstring(domain.XMLDesc(0).encode())
    finally:
        conn.close()


def test_uuid_bridge_and_attached_image(
    site: Site, tiny, tmp_path: Path, host_bridge: tuple[str, ipaddress.IPv4Network]
) -> None:
    bridge, net = host_bridge
    name = project_name()
    fixed = str(uuid.uuid4())
    images = site.root / f"images-{name}"  # a directory the QEMU user can reach
    images.mkdir(mode=0o755)
    image = images / "profiledev.img"
    marker = f"corral-image-{secrets.token_hex(8)}"
    image.write_bytes(marker.encode() + b"\n" + bytes(1024 * 1024 - len(marker) - 1))
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    address = str(net[10])
    path = write_project(tmp_path / "ident.corral",
                         project_text(name, fixed, bridge, address, image, "96M"))
    domain = f"{name}-fixed"
    try:
        with site.session() as session:
            result = projects.up(session, path)
        assert result.ok, [(o.domain, o.reason) for o in result.readiness]
        found, root = _domain(domain)
        assert found == fixed
        (nic,) = root.iterfind("devices/interface")
        assert (nic.get("type"), nic.find("source").get("bridge")) == ("bridge", bridge)
        disks = {d.findtext("serial"): d for d in root.iterfind("devices/disk")}
        assert disks["root"].find("source").get("file") == str(image)
        assert disks["root"].find("driver").get("type") == "raw"
        assert disks["scratch"].find("driver").get("type") == "raw"
        with GuestConsole(domain) as console:
            shown = console.run(
                "for d in /sys/block/vd*; do [ \"$(cat $d/serial)\" = root ] && "
                "head -c 40 /dev/${d##*/}; done; echo"
            )
            assert marker in shown, shown
        assert ping(address), f"the guest does not answer on {address} through {bridge}"

        write_project(path, project_text(name, fixed, bridge, address, image, "112M"))
        with site.session() as session:
            upgraded = projects.upgrade(session, path)
        assert upgraded.ok and upgraded.plan.of_kind(ActionKind.UPDATE_HOST)
        assert _domain(domain)[0] == fixed

        with site.session() as session:
            projects.remove(session, name)
        assert libvirt_objects(name).empty
        assert hashlib.sha256(image.read_bytes()).hexdigest() == digest
        assert subprocess.run(["ip", "link", "show", bridge], capture_output=True,
                              check=False).returncode == 0
    finally:
        remove_project(site, name)

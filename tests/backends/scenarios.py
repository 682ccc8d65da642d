"""Named domain and network scenarios shared by the golden and observe tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from corral.backends import BootSpec, DomainSpec, NicSpec, StaticLease
from corral.backends.base import DiskSpec
from corral.backends.libvirt import console
from corral.backends.libvirt.domain_xml import BackingFile
from corral.images.registry import Template
from corral.model import Host, Interface, Switch, SwitchMode
from corral.model.project import Disk, DiskType

PROJECT = "lab"
RUNS = "/var/lib/corral/runs"
ADDED = datetime(2026, 1, 1, tzinfo=UTC)


def disk_template(path: str = "/var/lib/corral/templates/deb/disk.qcow2") -> Template:
    return Template(
        name="deb", kind="disk", directory=Path(path).parent, disk=Path(path),
        format="qcow2", virtual_size=2 * 1024**3, sha256={}, added_at=ADDED,
    )


def direct_template() -> Template:
    root = Path("/var/lib/corral/templates/tiny")
    return Template(
        name="tiny", kind="direct", directory=root, disk=root / "root.qcow2",
        kernel=root / "vmlinuz", initrd=root / "initrd.img", format="qcow2",
        virtual_size=64 * 1024**2, cmdline="console=ttyS0 root=/dev/vda rw quiet panic=-1",
        sha256={}, added_at=ADDED,
    )


def host(name: str, **fields: object) -> Host:
    nics = (
        Interface(name="eth0", switch="lan", address="dhcp", mac="52:54:00:aa:00:01"),
        Interface(name="eth1", switch="ext", mac="52:54:00:aa:00:02"),
    )
    base: dict[str, object] = {"name": name, "memory_mib": 128, "interfaces": nics,
                              "service_host": "local"}
    base.update(fields)
    return Host(**base)  # type: ignore[arg-type]


def spec(h: Host, template: Template, virt: str = "qemu") -> DomainSpec:
    nics = tuple(
        NicSpec(i.mac, network=f"{PROJECT}-{i.switch}", name=i.name) for i in h.interfaces
    )
    return DomainSpec(
        project=PROJECT,
        host=h,
        virt_type=virt,
        boot=BootSpec.from_template(template),
        disk_path=f"/var/lib/corral/runs/{PROJECT}/{h.name}.qcow2",
        seed_path=f"/var/lib/corral/runs/{PROJECT}/{h.name}-seed.iso",
        nics=nics,
        model_hash=h.model_hash(),
        service_host="local",
    )


DOMAINS: dict[str, DomainSpec] = {
    "disk-plain": spec(host("web"), disk_template()),
    "no-seed": replace(spec(host("bare"), disk_template()), seed_path=None),
    "direct-boot": spec(host("tiny1"), direct_template()),
    "maxmem-maxvcpus": spec(
        host("big", memory_mib=256, maxmem_mib=1024, vcpus=1, maxvcpus=4), direct_template()
    ),
    "pinned": spec(host("pin", vcpus=2, cpus="0-1"), disk_template(), virt="kvm"),
    "vnc": spec(host("desk", vncdisplay=3, vncpasswd="s3cret"), disk_template()),
    "disks-boot-order": replace(
        spec(
            host(
                "store", boot=("network", "hd"),
                disks=(Disk(name="data", size_mib=1024), Disk(name="logs", size_mib=64)),
            ),
            disk_template(),
        ),
        disks=(
            DiskSpec("data", f"/var/lib/corral/runs/{PROJECT}/store.data.qcow2"),
            DiskSpec("logs", f"/var/lib/corral/runs/{PROJECT}/store.logs.qcow2"),
        ),
        nics=(NicSpec("52:54:00:aa:00:01", name="eth0"),),  # user-mode: no switch
    ),
    # Fixed identities and more devices: a UUID; one NIC on a NAT switch, one on an
    # isolated one, one straight on a host bridge; a new raw disk and two existing
    # images (one probed, one whose format the file gives).
    "identities": replace(
        spec(host("ident", uuid="bbdda922-8ee3-4ff8-874e-7c4e712dc4c7", disks=(
            Disk(name="scratch", size_mib=64, type=DiskType.RAW),
            Disk(name="root", path="/guests/profiledev.img", type=DiskType.IMAGE),
            Disk(name="logs", path="/guests/logs.qcow2", type=DiskType.QCOW2),
        )), disk_template()),
        disks=(
            DiskSpec("scratch", f"/var/lib/corral/runs/{PROJECT}/ident.scratch.raw",
                     format="raw"),
            DiskSpec("root", "/guests/profiledev.img", format="raw", probed=True),
            DiskSpec("logs", "/guests/logs.qcow2", format="qcow2"),
        ),
        nics=(
            NicSpec("52:54:00:aa:00:11", network=f"{PROJECT}-out", name="eth0"),
            NicSpec("52:54:00:aa:00:12", network=f"{PROJECT}-lan", name="eth1"),
            NicSpec("52:54:00:aa:00:13", bridge="xenbr1", name="eth2"),
        ),
    ),
    "lvm": replace(
        spec(host("db", lvm=True, lvm_vg="vg0", disks=(Disk(name="data", size_mib=64),)),
             disk_template()),
        disk_path="/dev/vg0/lab.db", disk_format="raw", disk_block=True,
        disks=(DiskSpec("data", "/dev/vg0/lab.db.data", format="raw", block=True),),
    ),
}

def console_log_of(scenario: str) -> str:
    """The console log file of a domain scenario, beside its seed in the project's pool."""
    return console.log_path(RUNS, PROJECT, DOMAINS[scenario].host)


def backing_of(scenario: str) -> tuple[BackingFile, ...]:
    """The run copy's backing chain of a domain scenario: its template's disk
    (none for a root disk on a logical volume, a raw copy of the template)."""
    if DOMAINS[scenario].disk_block:
        return ()
    template = direct_template() if DOMAINS[scenario].boot.kind == "direct" else disk_template()
    return (BackingFile(str(template.disk), template.format or "raw"),)


LEASES = (
    StaticLease("52:54:00:aa:00:02", "10.10.0.20", "db"),
    StaticLease("52:54:00:aa:00:01", "10.10.0.10", "web"),
    StaticLease("52:54:00:aa:00:09", "192.168.9.9", "elsewhere"),  # outside: dropped
)

NETWORKS: dict[str, tuple[Switch, tuple[StaticLease, ...]]] = {
    "isolated": (Switch(name="lan"), ()),
    "address-dhcp-leases": (Switch(name="srv", address="10.10.0.1/24"), LEASES),
    "nat": (Switch(name="out", mode=SwitchMode.NAT, address="192.168.77.1/24"), ()),
    "route": (Switch(name="rt", mode=SwitchMode.ROUTE, address="10.20.0.1/16"), ()),
    "bridge": (Switch(name="phys", mode=SwitchMode.BRIDGE, bridge="br0"), ()),
}


def legacy_network_mark(project: str, switch: Switch) -> str:
    """A network mark as earlier versions wrote it (percent-encoded fields), which
    the schema refuses but Corral must still recognise."""
    from urllib.parse import quote

    from corral.backends.libvirt.metadata import switch_model_json

    fields = [
        ("project", project), ("switch", switch.name), ("hash", switch.model_hash()),
        ("model", switch_model_json(switch)),
    ]
    return ";".join(["corral-meta", *(f"{k}={quote(v, safe='')}" for k, v in fields)])

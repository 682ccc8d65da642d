"""What ``validate`` refuses from the file alone, and the values keys turn into."""

from __future__ import annotations


def test_size_and_free_space_exclude_each_other(errors) -> None:
    assert errors("global { project p }\nhost a {\n size 2G\n free_space 1G\n}\n") == [
        "4:2: 'free_space' and 'size' (at p.mln:3:2) both set the root disk size: keep one"
    ]


def test_free_space_keeps_the_site_default_size_out(load, tmp_path) -> None:
    from corral.config import parse_site_config

    site = parse_site_config('[defaults]\nsize = "4G"\n', tmp_path / "c.toml")
    project = load("global { project p }\nhost a { free_space 1G }\nhost b { }\n", site=site)
    assert (project.hosts["a"].size_mib, project.hosts["a"].free_space_mib) == (None, 1024)
    assert project.hosts["b"].size_mib == 4096


def test_storage_keys(load, errors) -> None:
    project = load(
        "global { project p }\nhost a { filepath /srv//vms/ }\nhost b { lvm_vg vg0 }\n"
    )
    assert project.hosts["a"].filepath == "/srv/vms"
    assert (project.hosts["b"].lvm, project.hosts["b"].lvm_vg) == (True, "vg0")
    assert errors("global { project p }\nhost a {\n lvm_vg vg0\n filepath /srv\n}\n") == [
        "4:2: 'filepath' and LVM storage (at p.mln:3:2) exclude each other: keep one"
    ]
    assert errors("global { project p }\nhost a { filepath srv }\n") == [
        "2:19: filepath: 'srv' is not an absolute directory (e.g. /srv/vms)"
    ]


def test_boot_order_and_autostart(load, errors) -> None:
    host = load("global { project p }\nhost a {\n boot network hd\n autostart no\n}\n").hosts["a"]
    assert (host.boot, host.autostart) == (("network", "hd"), False)
    assert errors("global { project p }\nhost a { boot hd hd }\n") == [
        "2:18: boot device 'hd' is listed twice"
    ]
    assert errors("global { project p }\nhost a { boot fd }\n") == [
        "2:15: boot: unknown boot device 'fd': use one of hd, cdrom, network"
    ]


def test_disk_names_fit_a_serial_number(errors) -> None:
    assert errors(
        "global { project p }\nhost a { disk abcdefghijklmnopqrstu { size 1G } }\n"
    ) == [
        "2:15: disk name 'abcdefghijklmnopqrstu' is longer than 20 characters "
        "(it is the disk's serial number in the guest)"
    ]


def test_switch_keys_that_need_an_address(errors) -> None:
    assert errors("global { project p }\nswitch s {\n nat\n}\n") == [
        "3:2: switch 's': nat needs the host-side address: address 10.0.0.1/24"
    ]
    assert errors("global { project p }\nswitch s {\n route\n dhcp off\n}\n") == [
        "3:2: switch 's': route needs the host-side address: address 10.0.0.1/24",
        "4:2: switch 's': dhcp needs an address on the switch (address 10.0.0.1/24), "
        "and Corral serves no DHCP on an existing bridge",
    ]
    assert errors("global { project p }\nswitch s {\n bridge br0\n address 10.0.0.1/24\n}\n") == [
        "4:2: switch 's' joins an existing bridge, whose addresses are not Corral's to set: "
        "drop 'address' or 'bridge'"
    ]


NIC = """\
global {{ project p }}
switch s {{ address 10.1.0.1/{prefix} }}
host a {{
    network eth0 {{
        switch s
        address 10.1.0.5
{extra}    }}
}}
"""


def test_netmask_comes_from_the_switch_and_must_agree(load, errors) -> None:
    host = load(NIC.format(prefix=16, extra="")).hosts["a"]
    assert host.interfaces[0].netmask == "255.255.0.0"
    assert errors(NIC.format(prefix=16, extra="        netmask 255.255.255.0\n")) == [
        "7:17: netmask 255.255.255.0 disagrees with switch 's' (10.1.0.0/16, netmask "
        "255.255.0.0): drop it or make them agree"
    ]


def test_gateway_must_be_on_the_interface_subnet(load, errors) -> None:
    assert errors(NIC.format(prefix=24, extra="        gateway 10.2.0.1\n")) == [
        "7:17: gateway 10.2.0.1 is outside interface 'eth0''s subnet 10.1.0.0/24"
    ]
    assert errors(NIC.format(prefix=24, extra="        gateway 10.1.0.5\n")) == [
        "7:17: gateway 10.1.0.5 is the interface's own address"
    ]
    # with its own netmask and no switch subnet, the netmask decides
    host = load(
        "global { project p }\nhost a {\n network eth0 { address 10.1.0.5; netmask 16; "
        "gateway 10.1.200.1 }\n}\n"
    ).hosts["a"]
    assert host.interfaces[0].gateway == "10.1.200.1"


def test_a_switch_for_one_hypervisor_admits_only_its_hosts(load, errors) -> None:
    text = (
        "global {{ project p }}\nswitch lan {{ vmware }}\n"
        "host a {{\n {flag}\n network eth0 {{ switch lan }}\n}}\n"
    )
    assert load(text.format(flag="vmware")).hosts["a"].virt.value == "vmware"
    assert errors(text.format(flag="qemu")) == [
        "5:24: switch 'lan' is for vmware hosts, and host 'a' runs under qemu"
    ]


def test_vnc_displays_are_unique_per_service_host(load, errors) -> None:
    text = (
        "global {{ project p }}\nhost a {{ vncdisplay 3 }}\n"
        "host b {{\n vncdisplay 3\n{extra}}}\n"
    )
    assert errors(text.format(extra="")) == [
        "4:13: vncdisplay 3 is already used on service host local (at p.mln:2:21)"
    ]
    assert load(text.format(extra=" service_host other\n")).hosts["b"].vncdisplay == 3


def test_vnc_displays_of_hosts_the_scheduler_places_are_left_to_it(load) -> None:
    """With several service hosts the scheduler keeps equal displays apart."""
    from corral.config import ServiceHost, SiteConfig

    hosts = {n: ServiceHost(uri="test:///default") for n in ("h1", "h2")}
    text = "global { project p }\nhost a { vncdisplay 3 }\nhost b { vncdisplay 3 }\n"
    project = load(text, site=SiteConfig(service_hosts=hosts))
    assert [h.service_host for h in project.hosts.values()] == [None, None]

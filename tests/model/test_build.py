"""The typed model builder: defaults, conversions and every positioned error."""

from corral.config import Defaults, SiteConfig
from corral.model.project import SwitchMode, Virt, WaitKind

LAN = "switch lan { }\n"


def test_unknown_key_has_position_and_did_you_mean(errors) -> None:
    found = errors("global { project p }\nhost a {\n    memroy 128M\n}\n")
    assert found == ["3:5: unknown key 'memroy' (did you mean 'memory'?)"]


def test_every_error_in_a_file_is_reported(errors) -> None:
    found = errors(
        """\
        global { project p }
        host a {
            memory 12X
            xen
            kvm
            vcpus 0
            network eth0 { switch lann
                address 10.0.0.300
                mac 01:00:00:00:00:01 }
        }
        switch lan { }
        """
    )
    assert found == [
        "3:12: memory: '12X' is not a size (use e.g. 512M, 2G, 1024)",
        "5:5: conflicting hypervisor flags 'xen' (p.mln:4:5) and 'kvm'",
        "6:11: vcpus: '0' is not a positive whole number",
        "7:27: unknown switch 'lann': declare it with switch lann { } (did you mean 'lan'?)",
        "8:17: address: '10.0.0.300' is not an address: use dhcp, auto or an IPv4 address",
        "9:13: mac: '01:00:00:00:00:01' is a multicast MAC address; a NIC needs a unicast one",
    ]


def test_global_needs_a_valid_project_name_and_known_plugins(errors) -> None:
    assert errors("host a { }\n") == ["1:1: no global stanza: write global { project NAME }"]
    assert errors("global { project my_lab }\n") == [
        "1:18: project: invalid name 'my_lab': use letters, digits and hyphens only"
    ]
    found = errors("global {\n    project p\n    apachee { }\n    colour blue\n}\n")
    assert found == [
        "3:5: unknown plugin 'apachee' (installed: apache, autoenum, files, sshkey) "
        "(did you mean 'apache'?)",
        "4:5: unknown key 'colour'",
    ]


def test_site_defaults_fill_what_a_host_does_not_set(load) -> None:
    site = SiteConfig(defaults=Defaults(template="tiny", memory=96, size=1024, virt=Virt.QEMU))
    project = load("global { project p }\nhost a { }\nhost b { memory 1G\n kvm }\n", site=site)
    a, b = project.hosts["a"], project.hosts["b"]
    assert (a.template, a.memory_mib, a.size_mib, a.virt, a.service_host) == (
        "tiny",
        96,
        1024,
        Virt.QEMU,
        "local",
    )
    assert (b.memory_mib, b.virt) == (1024, Virt.KVM)


def test_all_host_keys(load) -> None:
    project = load(
        """\
        global { project p }
        host a {
            qemu
            memory 512M
            maxmem 1G
            vcpus 2
            maxvcpus 4
            cpus 0-1
            free_space 1G
            service_host milano
            nameserver 10.0.0.1 10.0.0.2
            nameserver 10.0.0.3
            disk data { size 10G }
            users { alice $6$salt$hash }
            root_passwd $1$x$y
            vncdisplay 5
            vncpasswd secret
            hvm
            lvm
            lvm_vg vg0
            boot hd network
            autostart yes
            packages vim curl
            runcmd {
                echo "hello world" > /tmp/x
                touch /tmp/y
            }
            wait console 120
            network eth0 {
                switch lan
                address 10.0.0.5
                netmask 24
                gateway 10.0.0.1
                mac 52:54:00:AA:BB:CC
            }
        }
        switch lan { address 10.0.0.1/24
            nat }
        """
    )
    host = project.hosts["a"]
    assert host.memory_mib == 512 and host.maxmem_mib == 1024
    assert (host.vcpus, host.maxvcpus, host.cpus) == (2, 4, "0-1")
    assert host.nameservers == ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    assert [(d.name, d.size_mib) for d in host.disks] == [("data", 10240)]
    assert host.users == {"alice": "$6$salt$hash"} and host.root_passwd == "$1$x$y"
    assert (host.vncdisplay, host.hvm, host.lvm, host.lvm_vg, host.boot) == (
        5,
        True,
        True,
        "vg0",
        ("hd", "network"),
    )
    assert host.autostart is True
    assert host.packages == ("vim", "curl")
    assert host.runcmd == ("echo 'hello world' > /tmp/x", "touch /tmp/y")
    assert (host.wait.kind, host.wait.timeout_s) == (WaitKind.CONSOLE, 120)
    (eth0,) = host.interfaces
    assert (eth0.address, eth0.netmask, eth0.mac) == (
        "10.0.0.5",
        "255.255.255.0",
        "52:54:00:aa:bb:cc",
    )
    lan = project.switches["lan"]
    assert (lan.mode, lan.address) == (SwitchMode.NAT, "10.0.0.1/24")


def test_list_keys_accept_blocks_and_single_strings(load) -> None:
    project = load(
        "global { project p }\nhost a {\n packages {\n  vim curl\n  git\n }\n"
        ' runcmd "systemctl restart ssh"\n wait { kind ssh; timeout 30 }\n}\n'
        'host b { runcmd touch /tmp/x }\nhost c { runcmd "apt-get update" "reboot" }\n'
    )
    assert project.hosts["b"].runcmd == ("touch /tmp/x",)
    assert project.hosts["c"].runcmd == ("apt-get update", "reboot")
    host = project.hosts["a"]
    assert host.packages == ("vim", "curl", "git")
    assert host.runcmd == ("systemctl restart ssh",)
    assert (host.wait.kind, host.wait.timeout_s) == (WaitKind.SSH, 30)


def test_ceilings_and_shapes(errors) -> None:
    found = errors(
        "global { project p }\nhost a {\n memory 2G\n maxmem 1G\n vcpus 4\n maxvcpus 2\n"
        " lvm yes\n template\n disk d { }\n wait sometime\n memory 3G\n}\n"
    )
    assert found == [
        "4:9: maxmem 1024 MiB is below memory 2048 MiB",
        "6:11: maxvcpus 2 is below vcpus 4",
        "7:6: 'lvm' is a flag and takes no value",
        "8:2: 'template' takes exactly one value: template VALUE",
        "9:2: disk 'd' needs a size (a new disk: size 10G) or a path (an existing image: "
        "path /srv/images/data.img)",
        "10:7: unknown wait kind 'sometime': use one of auto, dhcp, console, ping, ssh, none",
        "11:2: 'memory' is set twice (first at p.mln:3:2)",
    ]


def test_names_addresses_and_macs_across_hosts(errors) -> None:
    found = errors(
        """\
        global { project p }
        host a_b { }
        host c { network eth0 { switch lan
            address 10.1.0.5
            mac 52:54:00:00:00:01 } }
        host d { network eth0 { switch lan
            address 10.0.0.1
            mac 52:54:00:00:00:01 } }
        host e { network eth0 { switch lan
            address 10.0.0.1 } }
        switch lan { address 10.0.0.1/24 }
        switch bad { address 10.0.0.0/24 }
        """
    )
    assert found == [
        "2:6: host invalid name 'a_b': use letters, digits and hyphens only",
        "4:13: address 10.1.0.5 is outside switch 'lan' network 10.0.0.0/24",
        "7:13: address 10.0.0.1 is the host side of switch 'lan'",
        "8:9: MAC 52:54:00:00:00:01 is already used (at p.mln:5:9)",
        "10:13: address 10.0.0.1 is already used on switch 'lan' (at p.mln:7:13)",
        "10:13: address 10.0.0.1 is the host side of switch 'lan'",
        "12:22: address: '10.0.0.0/24' is the network or broadcast address of 10.0.0.0/24",
    ]


def test_switch_modes_conflict(errors) -> None:
    assert errors("global { project p }\nswitch s { address 10.0.0.1/24; nat\n route }\n") == [
        "3:2: 'route' conflicts with 'nat'"
    ]


def test_macs_are_derived_deterministically_and_distinct(load) -> None:
    text = (
        "global { project p }\n"
        + "".join(
            f"host h{i} {{ network eth0 {{ switch lan }}\n network eth1 {{ }} }}\n"
            for i in range(20)
        )
        + LAN
    )
    first, second = load(text), load(text)
    macs = [i.mac for h in first.hosts.values() for i in h.interfaces]
    assert macs == [i.mac for h in second.hosts.values() for i in h.interfaces]
    assert len(set(macs)) == 40 and all(m.startswith("52:54:00:") for m in macs)


def test_an_error_in_a_superclass_is_reported_once_at_the_superclass(errors) -> None:
    found = errors(
        "global { project p }\nsuperclass s {\n    memroy 1G\n}\n"
        "host a { superclass s }\nhost b { superclass s }\n"
    )
    assert found == ["3:5: unknown key 'memroy' (did you mean 'memory'?)"]


def test_address_auto_outside_autoenum_is_an_error(errors) -> None:
    assert errors("global { project p }\nhost a { network eth0 { address auto } }\n") == [
        "2:33: address auto is filled in by the autoenum plugin, and this host is not one of "
        "its hosts"
    ]


def test_yaml_goes_through_the_same_checks_with_positions(errors) -> None:
    text = "global: {project: p}\nhost a:\n  memroy: 128M\n  network eth0: {switch: lann}\n"
    assert errors(text + "switch lan:\n", name="p.yaml") == [
        "3:3: unknown key 'memroy' (did you mean 'memory'?)",
        "4:26: unknown switch 'lann': declare it with switch lann { } (did you mean 'lan'?)",
    ]


def test_who_places_each_host_is_kept_in_the_model(load) -> None:
    """The file (host, superclass, autoenum) places a host; otherwise the site's
    preset does, or, with several service hosts and no default, the scheduler."""
    from corral.config import ServiceHost
    from corral.model.project import PlacedBy

    text = (
        "global {\n project p\n autoenum { superclass s; numhosts 2; "
        "service_hosts { h1 h2 } }\n}\n"
        "superclass s { memory 96M }\nsuperclass t { service_host h2 }\n"
        "host a { }\nhost b { superclass t }\nhost c { service_host h1 }\n"
    )
    hosts = {"h1": ServiceHost(uri="test:///default"), "h2": ServiceHost(uri="test:///default")}
    scheduled = load(text, site=SiteConfig(service_hosts=hosts)).hosts
    assert {n: (h.service_host, h.placed_by) for n, h in scheduled.items()} == {
        "a": (None, PlacedBy.SCHEDULER),
        "b": ("h2", PlacedBy.FILE),
        "c": ("h1", PlacedBy.FILE),
        "s1": ("h1", PlacedBy.FILE),
        "s2": ("h2", PlacedBy.FILE),
    }
    contract = load(text, site=SiteConfig(service_hosts=hosts)).contract()["hosts"]["a"]
    assert (contract["service_host"], contract["placed_by"]) == (None, "scheduler")
    preset = SiteConfig(service_hosts=hosts, defaults=Defaults(service_host="h2"))
    a = load(text, site=preset).hosts["a"]
    assert (a.service_host, a.placed_by) == ("h2", PlacedBy.SITE)
    assert a.model_hash() == a.model_copy(update={"placed_by": PlacedBy.FILE}).model_hash()

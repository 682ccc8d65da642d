"""autoenum: generated names, addresses, round robin, overrides and errors."""

CLUSTER = """\
global {{
    project c
    autoenum {{
        superclass node
        numhosts {n}
        address auto
        addresses begin 10
        net 10.1.2.0
        service_hosts {{
            a b
            c
        }}
        {extra}
    }}
}}
superclass base {{
    memory 256M
    network eth0 {{ switch lan }}
    network eth1 {{ address dhcp
        switch lan }}
}}
superclass node {{ superclass base }}
switch lan {{ }}
{hosts}
"""


def cluster(n: int = 4, extra: str = "", hosts: str = "") -> str:
    return CLUSTER.format(n=n, extra=extra, hosts=hosts)


def test_hosts_are_named_numbered_and_spread_round_robin(load) -> None:
    project = load(cluster())
    assert list(project.hosts) == ["node1", "node2", "node3", "node4"]
    assert [h.service_host for h in project.hosts.values()] == ["a", "b", "c", "a"]
    eth0 = [h.interfaces[0] for h in project.hosts.values()]
    assert [i.address for i in eth0] == ["10.1.2.10", "10.1.2.11", "10.1.2.12", "10.1.2.13"]
    assert {i.netmask for i in eth0} == {"255.255.255.0"}
    assert {h.interfaces[1].address for h in project.hosts.values()} == {"dhcp"}
    assert {h.memory_mib for h in project.hosts.values()} == {256}


def test_prefix_names_hosts_and_written_hosts_merge_over_generated_ones(load) -> None:
    project = load(cluster(extra="prefix gpu", hosts="host gpu2 { memory 1G }\nhost other { }"))
    assert list(project.hosts) == ["other", "gpu1", "gpu2", "gpu3", "gpu4"]
    gpu2 = project.hosts["gpu2"]
    assert (gpu2.memory_mib, gpu2.service_host) == (1024, "b")
    assert gpu2.interfaces[0].address == "10.1.2.11"


def test_too_many_hosts_for_the_network_is_positioned(errors) -> None:
    assert errors(cluster(n=250)) == [
        "5:18: 250 hosts from number 10 do not fit in 10.1.2.0/24 (last would be 10.1.3.3)"
    ]


def test_bad_settings_are_positioned(errors) -> None:
    text = cluster(extra="numhost 3").replace("address auto", "address manual")
    assert errors(text) == [
        "6:17: address: 'manual' is not supported: autoenum knows only 'address auto'",
        "13:9: unknown key 'numhost' (did you mean 'numhosts'?)",
    ]


def test_unknown_superclass_is_reported_once(errors) -> None:
    text = cluster().replace("superclass node\n", "superclass nod\n")
    assert errors(text) == ["4:20: unknown superclass 'nod' (did you mean 'node'?)"]


def test_service_hosts_from_an_include_are_checked_at_their_own_position(errors) -> None:
    from pathlib import Path

    Path("servers.txt").write_text("good1\nbad_one good2\n")
    text = cluster().replace(
        "            a b\n            c\n", "            #include servers.txt\n"
    )
    assert errors(text) == [
        "2:1: service_host: invalid name 'bad_one': use letters, digits and hyphens only"
    ]

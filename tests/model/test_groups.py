"""Groups of hosts (``group NAME { members ...; settings }``): settings merged into
every member between its superclasses and its own statements, membership kept
as provenance that never changes a host's model hash."""

from __future__ import annotations

from corral.backends.libvirt.metadata import host_model_json
from corral.model.project import Host

CLUSTER = """\
global { project p }
switch lan { }
superclass base { memory 64M
    vcpus 1
    cpus 0 }
group cluster {
    members a b
    memory 256M
    maxmem 512M
    vcpus 2
    network eth0 { switch lan }
}
host a { superclass base }
host b { superclass base
    vcpus 4
    network eth0 { address dhcp } }
host c { superclass base }
"""


def test_members_take_the_group_settings_over_superclasses_and_under_their_own(load) -> None:
    hosts = load(CLUSTER).hosts
    a, b, c = hosts["a"], hosts["b"], hosts["c"]
    assert (a.memory_mib, a.maxmem_mib, a.vcpus, a.cpus) == (256, 512, 2, "0")
    assert (b.memory_mib, b.vcpus) == (256, 4)  # the host's own vcpus wins
    assert [(i.name, i.switch, i.address) for i in b.interfaces] == [("eth0", "lan", "dhcp")]
    assert [(i.name, i.switch) for i in a.interfaces] == [("eth0", "lan")]
    assert (c.memory_mib, c.vcpus, c.interfaces) == (64, 1, ())  # not a member


def test_membership_is_recorded_on_the_host_and_the_project(load) -> None:
    project = load(CLUSTER)
    assert project.groups == {"cluster": ("a", "b")}
    assert project.group_members("cluster") == ("a", "b")
    assert project.group_members("nope") is None
    assert project.hosts["a"].groups == ("cluster",)
    assert project.hosts["c"].groups == ()
    assert project.hosts["a"].superclasses == ("base",)


def test_show_json_has_the_groups_and_each_hosts_groups(load) -> None:
    contract = load(CLUSTER).contract()
    assert contract["groups"] == {"cluster": ["a", "b"]}
    assert contract["hosts"]["b"]["groups"] == ["cluster"]
    assert contract["hosts"]["c"]["groups"] == []


def test_a_host_in_no_group_hashes_exactly_as_before_groups_existed(load) -> None:
    """The digest of this host as the code before groups computed it: a host in
    no group is not reconfigured, nor its seed's instance id changed, by an upgrade."""
    host = load("global { project p }\nswitch lan { }\nhost web { memory 256M\n vcpus 2\n"
                " network eth0 { switch lan\n address dhcp } }\n").hosts["web"]
    assert host.groups == ()
    assert host.model_hash() == "b4395b0fc492e700"
    assert '"groups"' not in host_model_json(host)


def test_the_model_hash_and_the_domain_metadata_leave_membership_out(load) -> None:
    inline = load("global { project p }\nhost a { memory 256M\n vcpus 2 }\n").hosts["a"]
    grouped = load("global { project p }\ngroup g { members a\n memory 256M\n vcpus 2 }\n"
                   "host a { }\n").hosts["a"]
    assert grouped.groups == ("g",) and inline.groups == ()
    assert grouped.model_hash() == inline.model_hash()
    assert host_model_json(grouped) == host_model_json(inline)
    fields = {"name": "a", "service_host": "local"}
    assert Host.model_validate(fields).model_hash() == Host.model_validate(
        {**fields, "groups": ("g",)}).model_hash()


def test_changing_a_group_setting_changes_every_members_hash(load) -> None:
    before = load(CLUSTER).hosts
    after = load(CLUSTER.replace("memory 256M", "memory 384M")).hosts
    assert after["a"].memory_mib == after["b"].memory_mib == 384
    for name in ("a", "b"):
        assert before[name].model_hash() != after[name].model_hash()
    assert before["c"].model_hash() == after["c"].model_hash()


def test_two_groups_setting_a_key_differently_name_both_groups(errors) -> None:
    text = """\
    global { project p }
    group big { members a b
        memory 1G }
    group small { members b
        memory 128M }
    host a { }
    host b { }
    """
    assert errors(text) == [
        "5:5: groups 'big' (at p.mln:3:5) and 'small' set 'memory' differently for their "
        "common members (b) (set it in those hosts, or in only one of the groups)"
    ]


def test_the_hosts_own_value_or_an_equal_value_settles_two_groups(load) -> None:
    text = """\
    global { project p }
    switch lan { }
    group big { members a
        memory 1G
        vcpus 2
        network eth0 { switch lan } }
    group small { members a
        memory 128M
        vcpus 2
        network eth0 { switch lan } }
    host a { memory 512M }
    """
    host = load(text).hosts["a"]
    assert (host.memory_mib, host.vcpus, host.groups) == (512, 2, ("big", "small"))


def test_conflicts_inside_blocks_and_between_exclusive_flags(errors) -> None:
    text = """\
    global { project p }
    switch lan { }
    switch wan { }
    group x { members a
        kvm
        network eth0 { switch lan } }
    group y { members a
        qemu
        network eth0 { switch wan } }
    host a { }
    """
    assert errors(text) == [
        "8:5: groups 'x' (at p.mln:5:5) and 'y' set 'qemu' differently for their common "
        "members (a) (set it in those hosts, or in only one of the groups)",
        "9:20: groups 'x' (at p.mln:6:20) and 'y' set 'network eth0 switch' differently for "
        "their common members (a) (set it in those hosts, or in only one of the groups)",
    ]


def test_bad_members_are_positioned_errors(errors) -> None:
    text = """\
    global { project p }
    group g { members web1 wbe2 web1 }
    group empty { vcpus 2 }
    group g { members web1 }
    group h { members { web1 } }
    host web1 { }
    host web2 { }
    """
    assert sorted(errors(text)) == sorted([
        "2:24: group 'g': no host 'wbe2' (did you mean 'web2'?)",
        "2:29: host 'web1' is listed twice in group 'g' (first at p.mln:2:19)",
        "3:1: group 'empty' names no members: members HOST...",
        "4:7: duplicate group 'g' (first defined at p.mln:2:7)",
        "5:11: members takes host names: members HOST...",
    ])


def test_a_groups_keys_are_checked_as_a_hosts_once_each(errors) -> None:
    text = """\
    global { project p }
    group g { members a b
        memroy 1G
        vcpus many }
    group bad_name { members a }
    host a { }
    host b { }
    """
    assert errors(text) == [
        "3:5: unknown key 'memroy' (did you mean 'memory'?)",
        "4:11: vcpus: 'many' is not a positive whole number",
        "5:7: group invalid name 'bad_name': use letters, digits and hyphens only",
    ]


def test_a_group_may_name_a_superclass_and_members_inherit_it(load) -> None:
    text = """\
    global { project p }
    superclass big { memory 1G }
    group g { members a
        superclass big
        vcpus 2 }
    host a { }
    """
    host = load(text).hosts["a"]
    assert (host.memory_mib, host.vcpus, host.superclasses) == (1024, 2, ("big",))


def test_autoenum_hosts_can_be_members(load) -> None:
    text = """\
    global {
        project c
        autoenum {
            superclass node
            numhosts 3
        }
    }
    superclass node { memory 128M }
    group first-two { members node1 node2
        memory 256M }
    """
    hosts = load(text).hosts
    assert [hosts[f"node{i}"].memory_mib for i in (1, 2, 3)] == [256, 256, 128]
    assert hosts["node1"].groups == ("first-two",)


def test_a_group_in_yaml(load) -> None:
    text = """\
    global: {project: p}
    group:
      g: {members: [a, b], memory: 256M}
    host:
      a: {}
      b: {vcpus: 2}
    """
    project = load(text, name="p.yaml")
    assert project.groups == {"g": ("a", "b")}
    assert project.hosts["b"].memory_mib == 256 and project.hosts["b"].vcpus == 2

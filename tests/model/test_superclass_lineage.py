"""Which superclasses each host inherits (``Host.superclasses``): provenance that
Ansible inventories group by, and that never changes a host's model hash."""

from __future__ import annotations

from corral.model.project import Host

NESTED = """\
global { project p }
superclass base { memory 64M }
superclass web { superclass base
    vcpus 2 }
superclass monitored { superclass base }
superclass lone { }
host front { superclass web
    superclass monitored }
host plain { memory 32M }
host solo { superclass lone }
"""


def test_a_host_lists_every_superclass_it_inherits_in_merge_order(load) -> None:
    hosts = load(NESTED).hosts
    # base comes first (web inherits it) and once, though two superclasses inherit it
    assert hosts["front"].superclasses == ("base", "web", "monitored")
    assert (hosts["front"].memory_mib, hosts["front"].vcpus) == (64, 2)
    assert hosts["plain"].superclasses == ()
    assert hosts["solo"].superclasses == ("lone",)


def test_show_json_carries_the_superclasses(load) -> None:
    assert load(NESTED).contract()["hosts"]["front"]["superclasses"] == [
        "base", "web", "monitored"]


def test_the_model_hash_ignores_the_superclasses() -> None:
    fields = {"name": "web", "service_host": "local", "memory_mib": 256}
    bare = Host.model_validate(fields)
    inherited = Host.model_validate({**fields, "superclasses": ("base", "web")})
    assert bare != inherited
    assert bare.model_hash() == inherited.model_hash()
    assert bare.model_hash() != Host.model_validate({**fields, "vcpus": 2}).model_hash()


def test_a_refactored_file_keeps_each_hosts_hash(load) -> None:
    """The same values written inline or through superclasses: the same guest."""
    inline = load("global { project p }\nhost h { memory 64M\n vcpus 2 }\n").hosts["h"]
    inherited = load(NESTED.replace("host front", "host h")).hosts["h"]
    assert inherited.superclasses and not inline.superclasses
    assert inline.model_hash() == inherited.model_hash()


AUTOENUM = """\
global {
    project c
    autoenum {
        superclass node
        numhosts 2
    }
}
superclass base { memory 256M }
superclass node { superclass base }
host node2 { vcpus 4 }
"""


def test_autoenum_hosts_inherit_their_superclass_and_its_ancestors(load) -> None:
    hosts = load(AUTOENUM).hosts
    assert hosts["node1"].superclasses == ("base", "node")
    # a written host merged over a generated one keeps the generated one's inheritance
    assert hosts["node2"].superclasses == ("base", "node")
    assert (hosts["node2"].memory_mib, hosts["node2"].vcpus) == (256, 4)

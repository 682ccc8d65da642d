"""UUIDs and MACs shared across a site's projects: the pure comparison."""

from corral.model import Host, Interface, Project
from corral.model.project import Origin
from corral.plan.identities import identity_clashes

FIXED = "bbdda922-8ee3-4ff8-874e-7c4e712dc4c7"


def _project(name: str, host: str, mac: str, uuid: str | None = None) -> Project:
    nic = Interface(name="eth0", mac=mac)
    origin = Origin(file=f"{name}.mln", line=3, column=1)
    return Project(name=name, hosts={host: Host(
        name=host, service_host="local", uuid=uuid, interfaces=(nic,), origin=origin,
    )})


def test_a_shared_mac_or_uuid_names_both_hosts_and_its_own_record_is_no_clash() -> None:
    lab = _project("lab", "web", "52:54:00:00:00:01", FIXED)
    other = _project("other", "db", "52:54:00:00:00:01", FIXED)
    found = [(str(d.span), d.message) for d in identity_clashes(lab, [lab, other])]
    assert found == [
        ("lab.mln:3:1", f"host lab.web: uuid {FIXED} is also held by other.db (other.mln:3:1)"),
        ("lab.mln:3:1", "host lab.web interface eth0: MAC 52:54:00:00:00:01 is also held by "
                        "other.db interface eth0 (other.mln:3:1)"),
    ]
    assert identity_clashes(lab, [lab]) == []
    assert identity_clashes(lab, [_project("other", "db", "52:54:00:00:00:02")]) == []


def test_a_host_of_a_project_the_caller_may_not_see_is_not_named() -> None:
    lab = _project("lab", "web", "52:54:00:00:00:01")
    other = _project("secret", "db", "52:54:00:00:00:01")
    (problem,) = identity_clashes(lab, [other], hidden={"secret"})
    assert problem.message.endswith("is also held by a host of another project")

"""UUIDs and MACs shared with another project of the site are refused at plan time."""

from __future__ import annotations

import pytest

from corral.errors import SourceErrors
from corral.ops import projects

FIXED = "bbdda922-8ee3-4ff8-874e-7c4e712dc4c7"


def _other(tmp_path, body: str):
    path = tmp_path / "other.corral"
    path.write_text(
        "global { project other }\n"
        f"host db {{\n    template base\n    qemu\n    wait none\n{body}}}\n"
    )
    return path


def test_a_uuid_or_mac_another_project_holds_is_refused_naming_both(
    session, lab_file, tmp_path
):
    lab = lab_file(extra=f"host fixed {{\n superclass node\n uuid {FIXED}\n}}\n")
    projects.up(session, lab, wait=False)
    generated = session.backend("local").observe("lab")
    web_mac = next(
        n.mac for d in generated.domains if d.name == "lab-web" for n in d.model.interfaces
    )
    other = _other(
        tmp_path,
        f"    uuid {FIXED.upper()}\n    network eth0 {{ mac {web_mac} }}\n",
    )
    with pytest.raises(SourceErrors) as caught:
        projects.plan_source(session, other)
    rendered = [d.render(with_source=False) for d in caught.value.diagnostics]
    assert rendered == [
        f"{other}:2:1: error: host other.db: uuid {FIXED} is also held by "
        f"lab.fixed ({lab}:30:1) (give one of them another uuid)",
        f"{other}:2:1: error: host other.db interface eth0: MAC {web_mac} is also held by "
        f"lab.web interface eth0 ({lab}:14:1) (give one of them another MAC (or none: a MAC "
        "is derived when not given))",
    ]
    with pytest.raises(SourceErrors):
        projects.up(session, other, wait=False)
    assert session.backend("local").observe("other").domains == ()
    assert projects.plan_source(session, lab).empty  # its own record is no clash


def test_distinct_identities_plan_normally(session, lab_file, tmp_path):
    projects.up(session, lab_file(), wait=False)
    other = _other(tmp_path, "    uuid 26d1876a-85fc-49a4-9a5b-929570e18bb6\n"
                             "    network eth0 { }\n")
    assert [a.target for a in projects.plan_source(session, other).actions] == ["db"]


def test_two_hosts_of_one_project_with_one_uuid_are_refused_at_the_second(errors) -> None:
    found = errors(
        f"global {{ project p }}\nhost a {{ uuid {FIXED} }}\nhost b {{\n    uuid {FIXED}\n}}\n"
    )
    assert found == [f"4:10: host b: uuid {FIXED} is also host a's (at p.mln:2:15)"]


def test_a_user_of_the_server_is_not_told_hosts_of_projects_they_cannot_see(
    session, lab_file, tmp_path
):
    from corral.ops import users
    from corral.ops.clashes import refuse_site_clashes
    from corral.ops.identity import Identity, Scope
    from corral.state.accounts import Accounts

    lab = lab_file(extra=f"host fixed {{\n superclass node\n uuid {FIXED}\n}}\n")
    projects.up(session, lab, wait=False)
    root = Identity.site_administrator()
    users.add_user(session, root, "alice")
    users.add_user(session, root, "bob")
    Accounts(session.require_store()).claim_project("lab", "alice")
    other = projects.load_source(_other(tmp_path, f"    uuid {FIXED}\n"), session.site)
    for name, told in (("alice", "lab.fixed ("), ("bob", "a host of another project")):
        session.identity = Identity(name=name, admin=False, scope=Scope.FULL, source="x")
        with pytest.raises(SourceErrors) as caught:
            refuse_site_clashes(session, other)
        (problem,) = caught.value.diagnostics
        assert told in problem.message

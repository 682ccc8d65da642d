"""Placement through the operations layer, on three service hosts of libvirt's test driver.

Each service host is its own ``test:///FILE`` connection (a machine with the
CPUs and memory its file says), so what the scheduler reads is what libvirt
reports; ``local`` is left out of scheduling as a site with named hosts does.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.config import SiteConfig, parse_site_config
from corral.errors import ConflictError
from corral.ops import projects
from corral.ops.many import up_many
from corral.ops.observe import sight
from corral.ops.results import plan_as_json
from corral.ops.session import Session
from corral.plan import ActionKind
from corral.plan.placement import PlacementError

NODE = """<node>
  <cpu><mhz>2000</mhz><model>x86_64</model><active>{cpus}</active><nodes>1</nodes>
       <sockets>1</sockets><cores>{cpus}</cores><threads>1</threads></cpu>
  <memory>{kib}</memory>
</node>
"""
MACHINES = {"h1": (4, 2048), "h2": (4, 2048), "h3": (2, 1024)}  # CPUs, MiB


def site_text(root: Path, defaults: str = "", limits: dict[str, str] | None = None) -> str:
    text = (f'[defaults]\ntemplate = "base"\nvirt_type = "qemu"\n{defaults}\n'
            f'[paths]\ntemplates = "{root}/templates"\nstate = "{root}/state.db"\n'
            f'runs = "{root}/runs"\n')
    for name, (cpus, mib) in MACHINES.items():
        node = root / f"{name}.xml"
        node.write_text(NODE.format(cpus=cpus, kib=mib * 1024))
        text += f'\n[service_hosts.{name}]\nuri = "test://{node}"\n'
        text += (limits or {}).get(name, "")
    return text


def make_site(root: Path, **kw: object) -> SiteConfig:
    path = root / "corral.toml"
    path.write_text(site_text(root, **kw))  # type: ignore[arg-type]
    return parse_site_config(path.read_text(), path)


@pytest.fixture
def site_root(tmp_path: Path) -> Path:
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
    return tmp_path


@pytest.fixture
def open_session(site_root: Path) -> Iterator:
    opened: list[Session] = []

    def open_(**kw: object) -> Session:
        session = Session(make_site(site_root, **kw))
        session.registry.add("base", site_root / "base.qcow2")
        opened.append(session)
        return session

    yield open_
    for session in opened:
        session.close()


def project(path: Path, hosts: dict[str, str], name: str = "farm") -> Path:
    body = "".join(
        f"host {h} {{\n qemu\n wait none\n{extra or ''}"
        f"{'' if 'memory' in extra else ' memory 256M' + chr(10)}}}\n"
        for h, extra in hosts.items()
    )
    path.write_text(f"global {{ project {name} }}\n{body}")
    return path


def where(session: Session, name: str = "farm") -> dict[str, str]:
    return {h: seen.service_host for h, seen in sight(session, name).project.hosts.items()}


def test_local_is_not_scheduled_when_the_site_names_its_service_hosts(site_root) -> None:
    site = make_site(site_root)
    assert site.schedulable() == ["h1", "h2", "h3"]
    assert site.preset_service_host() is None
    assert site.fallback_service_host() == "h1"


def test_spread_places_new_hosts_evenly_and_plan_says_where(open_session, tmp_path) -> None:
    session = open_session()
    path = project(tmp_path / "farm.corral", {f"n{i}": "" for i in range(1, 7)})
    plan = projects.plan_source(session, path)
    creates = {a.target: a for a in plan.of_kind(ActionKind.CREATE_HOST)}
    assert creates["n1"].reason == "on h1, chosen by the scheduler (spread)"
    assert Counter(a.host.service_host for a in creates.values()) == {"h1": 2, "h2": 2, "h3": 2}
    assert {a["target"]: a["service_host"] for a in plan_as_json(plan)["actions"]} == {
        name: a.host.service_host for name, a in creates.items()
    }
    projects.build(session, path)
    placed = where(session)
    assert Counter(placed.values()) == {"h1": 2, "h2": 2, "h3": 2}
    assert projects.plan_source(session, path).empty


def test_later_upgrades_move_nothing_the_file_did_not_move(open_session, tmp_path) -> None:
    session = open_session()
    path = project(tmp_path / "farm.corral", {f"n{i}": "" for i in range(1, 7)})
    projects.build(session, path)
    before = where(session)
    # capacity changes: another project fills h2 and h3, the site caps h1 and packs
    other = project(tmp_path / "other.corral", {"o1": " service_host h2\n",
                                                "o2": " service_host h3\n"}, name="other")
    projects.build(session, other)
    session.site = make_site(tmp_path, defaults='placement = "pack"',
                             limits={"h1": "max_vms = 1\n"})
    hosts = {f"n{i}": "" for i in range(1, 8)}
    hosts["n1"] = " memory 320M\n"  # an unrelated change of one host
    result = projects.upgrade(session, project(path, hosts))
    kinds = {a.target: a.kind for a in result.actions}
    assert kinds == {"n1": "update-host", "n7": "create-host"}
    after = where(session)
    assert {h: after[h] for h in before} == before
    assert after["n7"] == "h2"  # pack: h1 is at max_vms, h2 is the first that fits


def test_the_site_default_places_new_hosts_and_the_file_always_wins(
    open_session, tmp_path
) -> None:
    session = open_session(defaults='service_host = "h3"')
    path = project(tmp_path / "farm.corral", {"a": "", "b": " service_host h1\n"})
    plan = projects.plan_source(session, path)
    reasons = {a.target: a.reason for a in plan.actions}
    assert reasons == {"a": "on h3, the site's default service host",
                       "b": "on h1, named in the file"}
    projects.build(session, path)
    assert where(session) == {"a": "h3", "b": "h1"}
    # built, not started: a stopped host moves cold (its volumes copied)
    moved = projects.plan_source(session, project(path, {"a": " service_host h2\n",
                                                         "b": " service_host h1\n"}))
    assert [(a.kind, a.target) for a in moved.actions] == [(ActionKind.MIGRATE_HOST, "a")]


def test_a_project_that_does_not_fit_says_which_hosts_lack_what(open_session, tmp_path) -> None:
    session = open_session(limits={"h1": "max_vms = 1\n"})
    hosts = {"big": " memory 3G\n", "wide": " vcpus 8\n"}
    with pytest.raises(PlacementError) as caught:
        projects.plan_source(session, project(tmp_path / "farm.corral", hosts))
    lines = caught.value.message.splitlines()
    assert lines[1] == ("  host big (needs 3072 MiB, 1 vCPUs): h1 has 2048 MiB not taken by "
                        "Corral VMs; h2 has 2048 MiB not taken by Corral VMs; "
                        "h3 has 1024 MiB not taken by Corral VMs")
    assert lines[2] == ("  host wide (needs 256 MiB, 8 vCPUs): h1 has 4 CPUs; h2 has 4 CPUs; "
                        "h3 has 2 CPUs")
    assert isinstance(caught.value, ConflictError)


def test_explicit_placement_over_a_site_limit_is_refused(open_session, tmp_path) -> None:
    session = open_session(limits={"h1": "max_vms = 2\nmax_memory = \"600M\"\n"})
    hosts = {h: " service_host h1\n" for h in ("a", "b", "c")}
    with pytest.raises(PlacementError) as caught:
        projects.build(session, project(tmp_path / "farm.corral", hosts))
    assert caught.value.message.splitlines()[1:] == [
        "  service host h1: max_vms 2 exceeded: it would carry 3 Corral VMs "
        "(this project's hosts there: a, b, c)",
        "  service host h1: max_memory 600 MiB exceeded: it would carry 768 MiB "
        "(this project's hosts there: a, b, c)",
    ]
    assert where(session) == {}


def test_a_run_copy_left_by_an_interrupted_build_keeps_its_host_there(
    open_session, tmp_path
) -> None:
    session = open_session()
    path = project(tmp_path / "farm.corral", {"n1": "", "n2": ""})
    projects.build(session, path)
    assert where(session) == {"n1": "h1", "n2": "h2"}
    session.backend("h2").undefine("farm-n2")  # the domain is gone, its disks are not
    session.site = make_site(tmp_path, defaults='placement = "pack"')
    plan = projects.plan_source(session, path)
    (create,) = plan.actions
    assert (create.kind, create.target) == (ActionKind.CREATE_HOST, "n2")
    assert create.reason == "on h2; disk kept from an interrupted build"


def test_no_service_host_to_choose_from_is_said_so(open_session, tmp_path) -> None:
    limits = {name: "schedule = false\n" for name in MACHINES}
    session = open_session(limits=limits)
    with pytest.raises(PlacementError, match=r"host a .*: no service host may be chosen"):
        projects.plan_source(session, project(tmp_path / "farm.corral", {"a": ""}))


def test_the_projects_of_one_up_are_placed_in_turn_and_spread_like_one(
    open_session, tmp_path
) -> None:
    """``corral up A B ...`` of one-host projects: each placement counts the hosts the
    projects before it placed, so they spread in the order given, the same way
    every time (placed each from what the others had defined by then, they
    landed where the race between them put them)."""
    session = open_session()
    files = [project(tmp_path / f"p{i}.corral", {"n": ""}, name=f"p{i}") for i in range(1, 7)]
    result = up_many(session, files, wait=False)
    assert result.ok, result.failed
    placed = {f"p{i}": where(session, f"p{i}")["n"] for i in range(1, 7)}
    assert placed == {"p1": "h1", "p2": "h2", "p3": "h3", "p4": "h1", "p5": "h2", "p6": "h3"}
    for i in range(1, 7):
        projects.remove(session, f"p{i}")
    with Session(session.site) as again:  # a new command
        assert up_many(again, files, wait=False).ok
        assert {f"p{i}": where(again, f"p{i}")["n"] for i in range(1, 7)} == placed

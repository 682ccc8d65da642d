"""Switches across service hosts through the operations layer, on the test driver.

Three service hosts (local, h1, h2), each a test driver of its own (a custom
``test:///FILE`` node keeps its own state, unlike ``test:///default``, whose
state every open connection shares), so each has its own networks and
domains as separate machines would. Nothing boots; what is checked is what
Corral asks of libvirt.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from lxml import etree

from corral.config import SiteConfig, parse_site_config
from corral.errors import SourceErrors
from corral.ops import projects
from corral.ops.session import Session
from corral.plan import ActionKind

SITE = """
[defaults]
template = "base"
virt_type = "qemu"

[paths]
templates = "{root}/templates"
state = "{root}/state.db"
runs = "{root}/runs"

[service_hosts.local]
uri = "test:///default"

[service_hosts.h1]
uri = "test://{root}/h1.xml"
{h1}
[service_hosts.h2]
uri = "test://{root}/h2.xml"
{h2}
"""

PROJECT = """global {{ project span }}
switch lan {{ {lan} }}
host a {{
    template base
    qemu
    wait none
    service_host h1
    network eth0 {{
        switch lan
        address 10.77.0.11
        netmask 24
    }}
}}
host b {{
    template base
    qemu
    wait none
    service_host {b_on}
    network eth0 {{
        switch lan
        address 10.77.0.12
        netmask 24
    }}
}}
"""
BRIDGE = 'site_bridge = "br-site"\n'
# A test-driver node whose host has the bridge br-site.
WITH_BRIDGE = """<node>
  <interface type='bridge' name='br-site'>
    <start mode='onboot'/>
    <bridge><interface type='ethernet' name='eth9'/></bridge>
  </interface>
</node>
"""


def _site(tmp_path: Path, h1: str = BRIDGE, h2: str = BRIDGE,
          bridged: tuple[str, ...] = ("h1", "h2")) -> SiteConfig:
    config = tmp_path / "corral.toml"
    config.write_text(SITE.format(root=tmp_path, h1=h1, h2=h2))
    for name in ("h1", "h2"):
        node = WITH_BRIDGE if name in bridged else "<node/>\n"
        (tmp_path / f"{name}.xml").write_text(node)
    return parse_site_config(config.read_text(), config)


@pytest.fixture
def session_of(tmp_path: Path):
    opened: list[Session] = []
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)

    def make(site: SiteConfig) -> Session:
        session = Session(site)
        session.registry.add("base", base)
        opened.append(session)
        return session

    yield make
    for session in opened:
        session.close()


def _project(tmp_path: Path, b_on: str = "h2", lan: str = "") -> Path:
    path = tmp_path / f"span-{b_on}.corral"
    path.write_text(PROJECT.format(b_on=b_on, lan=lan))
    return path


def _network(session: Session, service_host: str) -> etree._Element | None:
    conn = session.backend(service_host).conn  # type: ignore[attr-defined]
    names = conn.listNetworks() + conn.listDefinedNetworks()
    if "span-lan" not in names:
        return None
    return etree.fromstring(conn.networkLookupByName("span-lan").XMLDesc(0).encode())


def test_without_site_bridges_the_plan_refuses_naming_hosts_and_vms(session_of, tmp_path):
    session = session_of(_site(tmp_path, h1="", h2=""))
    with pytest.raises(SourceErrors) as refused:
        projects.plan_source(session, _project(tmp_path))
    (problem,) = refused.value.diagnostics
    assert problem.span.file.endswith("span-h2.corral") and problem.span.line == 2
    assert problem.message == (
        "switch lan connects VMs on service hosts h1, h2 (h1: a; h2: b), but h1 and h2 "
        "have no site_bridge: its VMs would sit on separate LANs")
    with pytest.raises(SourceErrors):
        projects.up(session, _project(tmp_path), wait=False)
    assert _network(session, "h1") is None and _network(session, "h2") is None


def test_one_host_without_site_bridge_is_named(session_of, tmp_path):
    session = session_of(_site(tmp_path, h2=""))
    with pytest.raises(SourceErrors, match="but h2 has no site_bridge") as refused:
        projects.plan_source(session, _project(tmp_path))
    assert "[service_hosts.h2]" in (refused.value.diagnostics[0].hint or "")


def test_a_site_bridge_missing_on_its_service_host_is_refused_before_any_change(
    session_of, tmp_path
):
    session = session_of(_site(tmp_path, bridged=("h1",)))
    plan = projects.plan_source(session, _project(tmp_path))  # the plan cannot tell
    assert plan.of_kind(ActionKind.CREATE_SWITCH)
    with pytest.raises(SourceErrors) as refused:
        projects.up(session, _project(tmp_path), wait=False)
    (problem,) = refused.value.diagnostics
    assert problem.message == (
        "switch lan: service host h2 has no bridge br-site (its site_bridge in the site config)")
    assert _network(session, "h1") is None and _network(session, "h2") is None


def test_an_addressed_switch_across_hosts_is_refused(session_of, tmp_path):
    session = session_of(_site(tmp_path))
    with pytest.raises(SourceErrors, match=r"switch lan has address 10\.77\.0\.1/24"):
        projects.plan_source(session, _project(tmp_path, lan="address 10.77.0.1/24"))


def test_a_switch_over_two_hosts_joins_the_site_bridge_on_each(session_of, tmp_path):
    session = session_of(_site(tmp_path))
    path = _project(tmp_path)
    plan = projects.plan_source(session, path)
    (create,) = plan.of_kind(ActionKind.CREATE_SWITCH)
    assert create.reason == "on h1, h2 through site bridge br-site"
    assert projects.up(session, path, wait=False).ok
    for service_host, host in (("h1", "a"), ("h2", "b")):
        network = _network(session, service_host)
        assert network is not None
        assert network.find("forward").get("mode") == "bridge"
        assert network.find("bridge").get("name") == "br-site"
        conn = session.backend(service_host).conn  # type: ignore[attr-defined]
        domain = etree.fromstring(conn.lookupByName(f"span-{host}").XMLDesc(0).encode())
        assert domain.find("devices/interface/source").get("network") == "span-lan"
    assert _network(session, "local") is None
    assert projects.plan_source(session, path).empty

    # `start` brings an inactive network back as it was: still on the site bridge.
    h1 = session.backend("h1").conn  # type: ignore[attr-defined]
    h1.networkLookupByName("span-lan").destroy()
    assert projects.plan_source(session, path).of_kind(ActionKind.START_SWITCH)
    projects.start(session, "span", wait=False)
    assert h1.networkLookupByName("span-lan").isActive()
    assert _network(session, "h1").find("bridge").get("name") == "br-site"
    assert projects.plan_source(session, path).empty

    # b moves to h1: the switch is on one host again, with its own bridge,
    # and h2's network goes once b has left h2.
    moved = _project(tmp_path, b_on="h1")
    plan = projects.plan_source(session, moved)
    (update,) = plan.of_kind(ActionKind.UPDATE_SWITCH)
    assert [c.describe() for c in update.changes] == [
        "service_hosts: h1, h2 through site bridge br-site -> h1"]
    assert projects.upgrade(session, moved, recreate=True).ok
    network = _network(session, "h1")
    assert network is not None and network.find("forward") is None
    assert network.find("bridge").get("name").startswith("crl-")
    assert _network(session, "h2") is None
    assert projects.plan_source(session, moved).empty

    # And back across hosts.
    plan = projects.plan_source(session, path)
    (update,) = plan.of_kind(ActionKind.UPDATE_SWITCH)
    assert [c.describe() for c in update.changes] == [
        "service_hosts: h1 -> h1, h2 through site bridge br-site"]
    assert projects.upgrade(session, path, recreate=True).ok
    assert _network(session, "h1").find("bridge").get("name") == "br-site"
    assert _network(session, "h2").find("bridge").get("name") == "br-site"
    assert projects.plan_source(session, path).empty
    assert projects.remove(session, "span").removed


def test_two_cross_host_switches_on_one_site_bridge_are_warned_of(session_of, tmp_path):
    session = session_of(_site(tmp_path))
    path = _project(tmp_path)
    text = path.read_text().replace("switch lan {  }", "switch lan {  }\nswitch dmz { }")
    text = text.replace("    wait none\n    service_host h1\n",
                        "    wait none\n    service_host h1\n    network eth1 { switch dmz }\n")
    text = text.replace("    wait none\n    service_host h2\n",
                        "    wait none\n    service_host h2\n    network eth1 { switch dmz }\n")
    path.write_text(text)
    mark = session.warning_mark()
    projects.plan_source(session, path)
    (warning,) = session.warnings_since(mark)
    assert "switches dmz and lan all cross service hosts through site bridge br-site" in warning

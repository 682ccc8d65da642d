"""Where switches live, and the plan of a switch that becomes cross-host and back."""

from __future__ import annotations

from corral.model import Host, Interface, Project, Switch, SwitchMode
from corral.model.project import Origin
from corral.plan import ActionKind, ObservedProject, ObservedSwitch, plan_project
from corral.plan.spans import shared_segments, span_problems, switch_placement, switch_spans

BRIDGES = {"local": None, "h1": "br-site", "h2": "br-site", "h3": None}
AT = Origin(file="lab.corral", line=7, column=1)


def _host(name: str, service_host: str, switch: str = "lan", mac: str = "01") -> Host:
    nic = Interface(name="eth0", switch=switch, address="10.77.0.1", netmask="24",
                    mac=f"52:54:00:00:00:{mac}")
    return Host(name=name, template="tiny", service_host=service_host, interfaces=(nic,))


def _project(*hosts: Host, **switches: Switch) -> Project:
    found = switches or {"lan": Switch(name="lan", origin=AT)}
    return Project(name="lab", hosts={h.name: h for h in hosts}, switches=found)


def test_a_switch_goes_where_its_hosts_run() -> None:
    project = _project(_host("a", "h1"), _host("b", "h2"),
                       lan=Switch(name="lan"), idle=Switch(name="idle", service_host="h3"),
                       spare=Switch(name="spare"))
    assert switch_placement(project, "local") == {
        "lan": {"h1", "h2"}, "idle": {"h3"}, "spare": {"local"}}


def test_a_switch_service_host_applies_only_while_no_host_uses_it() -> None:
    project = _project(_host("a", "h1"), lan=Switch(name="lan", service_host="h2"))
    assert switch_placement(project, "local") == {"lan": {"h1"}}


def test_one_host_keeps_its_own_network_and_several_join_the_site_bridge() -> None:
    alone = switch_spans(_project(_host("a", "h1"), _host("b", "h1", mac="02")), BRIDGES, "local")
    assert alone["lan"].places == {"h1": None}
    assert not alone["lan"].crosses and alone["lan"].describe() == "h1"
    spread = switch_spans(_project(_host("a", "h1"), _host("b", "h2")), BRIDGES, "local")
    assert spread["lan"].places == {"h1": "br-site", "h2": "br-site"}
    assert spread["lan"].crosses
    assert spread["lan"].describe() == "h1, h2 through site bridge br-site"


def test_a_bridge_switch_keeps_its_own_bridge_on_every_host() -> None:
    project = _project(_host("a", "h1"), _host("b", "h3"),
                       lan=Switch(name="lan", mode=SwitchMode.BRIDGE, bridge="br0"))
    assert switch_spans(project, BRIDGES, "local")["lan"].places == {"h1": None, "h3": None}
    assert span_problems(project, BRIDGES, "local") == []


def test_a_host_without_site_bridge_is_refused_naming_hosts_vms_and_fix() -> None:
    project = _project(_host("a", "h1"), _host("b", "h3"), _host("c", "h3", mac="03"))
    (problem,) = span_problems(project, BRIDGES, "local")
    assert (problem.span.file, problem.span.line, problem.span.column) == ("lab.corral", 7, 1)
    assert problem.message == (
        "switch lan connects VMs on service hosts h1, h3 (h1: a; h3: b, c), but h3 has no "
        "site_bridge: its VMs would sit on separate LANs")
    assert problem.hint is not None
    assert 'site_bridge = "BRIDGE" in [service_hosts.h3]' in problem.hint
    assert "on one service host" in problem.hint


def test_an_address_cannot_span_hosts() -> None:
    lan = Switch(name="lan", mode=SwitchMode.NAT, address="10.77.0.1/24", origin=AT)
    project = _project(_host("a", "h1"), _host("b", "h2"), lan=lan)
    (problem,) = span_problems(project, BRIDGES, "local")
    assert "switch lan has address 10.77.0.1/24 (a host-side address, DHCP and nat)" in (
        problem.message)
    assert "h1, h2 (h1: a; h2: b)" in problem.message
    assert problem.hint is not None and "drop address" in problem.hint
    # On one service host the same switch is fine.
    assert span_problems(_project(_host("a", "h1"), lan=lan), BRIDGES, "local") == []


def test_cross_host_switches_sharing_a_site_bridge_are_warned_of() -> None:
    project = _project(
        _host("a", "h1"), _host("b", "h2"),
        _host("c", "h1", switch="dmz", mac="03"), _host("d", "h2", switch="dmz", mac="04"),
        _host("e", "h1", switch="solo", mac="05"),
        lan=Switch(name="lan"), dmz=Switch(name="dmz"), solo=Switch(name="solo"),
    )
    (warning,) = shared_segments(switch_spans(project, BRIDGES, "local"))
    assert warning.startswith("switches dmz and lan all cross service hosts through site "
                              "bridge br-site: they share one layer-2 segment")


# ---------------------------------------------------------------- the plan


def _network(switch: Switch, service_host: str, site_bridge: str | None) -> ObservedSwitch:
    return ObservedSwitch(switch.name, switch.model_hash(), True, service_host,
                          f"lab-{switch.name}", switch, site_bridge)


def _observed(*networks: ObservedSwitch) -> ObservedProject:
    return ObservedProject("lab", switches={networks[0].name: networks[0]},
                           switch_networks={networks[0].name: networks})


def _switch_actions(project: Project, observed: ObservedProject):
    spans = switch_spans(project, BRIDGES, "local")
    plan = plan_project(project, observed, spans=spans)
    return [a for a in plan.actions if "switch" in a.kind.value]


def test_a_new_cross_host_switch_says_where_it_goes() -> None:
    project = _project(_host("a", "h1"), _host("b", "h2"))
    (action,) = _switch_actions(project, ObservedProject("lab"))
    assert action.kind is ActionKind.CREATE_SWITCH
    assert action.reason == "on h1, h2 through site bridge br-site"


def test_a_switch_becoming_cross_host_is_an_update() -> None:
    project = _project(_host("a", "h1"), _host("b", "h2"))
    lan = project.switches["lan"]
    (action,) = _switch_actions(project, _observed(_network(lan, "h1", None)))
    assert action.kind is ActionKind.UPDATE_SWITCH
    assert [c.describe() for c in action.changes] == [
        "service_hosts: h1 -> h1, h2 through site bridge br-site"]
    assert action.reason == (
        "network restarted; running guests are plugged into it again; networks added on h2")


def test_a_switch_back_on_one_host_is_an_update_that_removes_the_other_network() -> None:
    project = _project(_host("a", "h1"), _host("b", "h1", mac="02"))
    lan = project.switches["lan"]
    seen = _observed(_network(lan, "h1", "br-site"), _network(lan, "h2", "br-site"))
    (action,) = _switch_actions(project, seen)
    assert [c.describe() for c in action.changes] == [
        "service_hosts: h1, h2 through site bridge br-site -> h1"]
    assert "networks removed from h2" in action.reason


def test_a_settled_cross_host_switch_plans_nothing() -> None:
    project = _project(_host("a", "h1"), _host("b", "h2"))
    lan = project.switches["lan"]
    seen = _observed(_network(lan, "h1", "br-site"), _network(lan, "h2", "br-site"))
    assert _switch_actions(project, seen) == []


def test_a_single_host_switch_plans_as_before() -> None:
    project = _project(_host("a", "h1"))
    lan = project.switches["lan"]
    assert _switch_actions(project, _observed(_network(lan, "h1", None))) == []
    changed = _project(_host("a", "h1"), lan=Switch(name="lan", address="10.77.0.1/24"))
    (action,) = _switch_actions(changed, _observed(_network(lan, "h1", None)))
    assert action.kind is ActionKind.UPDATE_SWITCH
    assert [c.field for c in action.changes] == ["address"]
    assert action.reason == "network restarted; running guests are plugged into it again"

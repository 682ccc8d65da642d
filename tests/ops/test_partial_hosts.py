"""Work across service hosts: a failing service host fails only its own VMs.

Service hosts here are libvirt's test driver (``test:///default``, and a
private one per connection from a node file) and a TCP port nobody listens
on, which libvirt refuses at once with its reason, as it does a host whose
daemon is down. The bounded worker pool is checked on its own.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from corral.config import parse_site_config
from corral.errors import CorralError, NotFoundError
from corral.ops import projects, vms
from corral.ops.session import Session
from corral.ops.status import status_report
from corral.ops.workers import HostPlaces, host_bound, overall_bound, run_bounded


def free_port() -> int:
    """A TCP port nobody listens on: libvirt is refused there at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

NODE = """<node>
  <cpu><mhz>2000</mhz><model>t</model><nodes>1</nodes><sockets>1</sockets>
  <cores>4</cores><threads>1</threads></cpu>
  <memory>2097152</memory>
</node>
"""

PROJECT = """global {{ project {name} }}
switch lan {{ }}
switch wan {{ }}
superclass node {{
    template base
    qemu
    wait none
}}
host a {{
    superclass node
    network eth0 {{ switch lan }}
}}
host b {{
    superclass node
    service_host {far}
    network eth0 {{ switch wan }}
}}
"""


def write_site(
    tmp_path: Path, far_uri: str, extra: dict[str, str] | None = None,
    local: str = "test:///default",
) -> Path:
    hosts = {"local": local, "far": far_uri, **(extra or {})}
    body = "".join(f'[service_hosts.{n}]\nuri = "{u}"\n\n' for n, u in hosts.items())
    path = tmp_path / "corral.toml"
    path.write_text(
        f'[defaults]\ntemplate = "base"\nvirt_type = "qemu"\n\n'
        f'[paths]\ntemplates = "{tmp_path}/t"\nstate = "{tmp_path}/s.db"\n'
        f'runs = "{tmp_path}/r"\n\n{body}'
    )
    return path


def open_session(path: Path) -> Session:
    return Session(parse_site_config(path.read_text(), path))


@pytest.fixture
def refused() -> str:
    return f"qemu+tcp://127.0.0.1:{free_port()}/system"


@pytest.fixture
def base(tmp_path: Path) -> Path:
    image = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    return image


def project_file(tmp_path: Path, name: str, far: str = "far") -> Path:
    path = tmp_path / f"{name}.corral"
    path.write_text(PROJECT.format(name=name, far=far))
    return path


def test_a_refusing_service_host_fails_only_its_vms_and_a_rerun_completes(
    tmp_path: Path, refused: str, base: Path
) -> None:
    site = write_site(tmp_path, refused)
    lab = project_file(tmp_path, "plab")
    # test:///default lives while a connection to it is open: the first session
    # stays open while the second, with far back, reruns
    with open_session(site) as session:
        session.registry.add("base", base)
        result = projects.up(session, lab, wait=False)
        assert result.partial and not result.ok
        (failure,) = result.failed
        assert (failure.kind, failure.name, failure.service_host) == ("host", "b", "far")
        assert "cannot connect to service host 'far'" in failure.reason
        assert result.started == ("a",)
        assert [a.target for a in result.actions if a.kind == "create-host"] == ["a"]
        shown = result.as_json()
        assert shown["partial"] is True and shown["failed"][0]["name"] == "b"
        domains = session.backend("local").domain_states("plab")
        assert set(domains) == {"plab-a"} and domains["plab-a"].value == "running"
        batch = vms.vm_action_each(session, ["plab.a", "plab.b"], "pause")
        assert [d.target for d in batch.done] == ["plab.a"] and batch.partial
        (away,) = batch.failed
        assert away.name == "plab.b" and "far: cannot connect to service host 'far'" in away.reason
        assert vms.vm_action_each(session, ["plab.a"], "resume").done[0].outcome == "resumed"
        # the service host is back (here: a test driver of its own); the rerun finishes
        node = tmp_path / "far.xml"
        node.write_text(NODE)
        write_site(tmp_path, f"test://{node}")
        with open_session(site) as back:
            again = projects.up(back, lab, wait=False)
            assert again.ok and not again.failed, again.failed
            assert [a.target for a in again.actions if a.kind == "create-host"] == ["b"]
            assert again.started == ("b",)
            assert set(back.backend("far").domain_states("plab")) == {"plab-b"}


def test_the_cli_lists_what_failed_and_exits_partial(
    tmp_path: Path, refused: str, base: Path
) -> None:
    site = write_site(tmp_path, refused)
    with open_session(site) as session:
        session.registry.add("base", base)
    argv = [sys.executable, "-m", "corral", "--config", str(site)]
    done = subprocess.run(
        [*argv, "up", "--no-wait", str(project_file(tmp_path, "pcli"))],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False, timeout=120,
    )
    assert done.returncode == 10, done.stdout + done.stderr
    assert "partly done; FAILED:" in done.stdout
    assert "host b (on service host far): cannot connect to service host 'far'" in done.stdout
    assert "started a" in done.stdout


def test_an_unreachable_service_host_with_none_of_the_vms_is_a_warning(
    tmp_path: Path, refused: str, base: Path
) -> None:
    site = write_site(tmp_path, "test:///default", {"idle": refused})
    with open_session(site) as session:
        session.registry.add("base", base)
        result = projects.up(session, project_file(tmp_path, "pidle", far="local"), wait=False)
        assert result.ok and not result.partial
        assert any("service host idle did not answer" in w and "has nothing there" in w
                   for w in result.warnings), result.warnings
        stopped = projects.stop(session, "pidle", timeout_s=0)
        assert not stopped.partial and {h.host for h in stopped.hosts} == {"a", "b"}
        with pytest.raises(NotFoundError):
            projects.stop(session, "pidle", hosts=["nosuch"])


def test_up_of_a_project_all_elsewhere_works_with_the_local_service_host_down(
    tmp_path: Path, refused: str, base: Path
) -> None:
    node = tmp_path / "far.xml"
    node.write_text(NODE)
    site = write_site(tmp_path, f"test://{node}", local=refused)
    lab = tmp_path / "pfar.corral"
    written = PROJECT.format(name="pfar", far="far")
    lab.write_text(written.replace("host a {\n    superclass node\n",
                                   "host a {\n    superclass node\n    service_host far\n"))
    assert "service_host far" in lab.read_text().split("host b")[0]
    with open_session(site) as session:
        session.registry.add("base", base)
        result = projects.up(session, lab, wait=False)
        assert result.ok and not result.failed, result.failed
        assert sorted(result.started) == ["a", "b"]
        assert any("service host local did not answer" in w for w in result.warnings)
        assert projects.stop(session, "pfar", timeout_s=0).failed == ()


def test_stop_and_start_fail_the_vms_recorded_on_a_host_that_is_down(
    tmp_path: Path, refused: str, base: Path
) -> None:
    node = tmp_path / "far.xml"
    node.write_text(NODE)
    site = write_site(tmp_path, f"test://{node}")
    lab = project_file(tmp_path, "pstop")
    with open_session(site) as session:
        session.registry.add("base", base)
        assert projects.up(session, lab, wait=False).ok
        write_site(tmp_path, refused)  # far is down now
        with open_session(site) as later:
            stopped = projects.stop(later, "pstop", timeout_s=0)
            assert [h.host for h in stopped.hosts] == ["a"]
            assert [(f.name, f.service_host) for f in stopped.failed] == [("b", "far")]
            started = projects.start(later, "pstop", wait=False)
            assert started.started == ("a",) and [f.name for f in started.failed] == ["b"]
            removed = projects.remove(later, "pstop")
            assert [(r.kind, r.host) for r in removed.removed if r.kind == "domain"] == [
                ("domain", "a")
            ]
            assert [(f.name, f.service_host) for f in removed.failed] == [("b", "far")]
            # still recorded: status names b as unknown on far, a rerun removes it
            rows = status_report(later, "pstop", timeout_s=5).rows
            assert [(r.host, r.state, r.service_host) for r in rows] == [
                ("a", "absent", "local"), ("b", "unknown", "far")
            ]


def test_status_has_a_row_per_service_host(tmp_path: Path, refused: str, base: Path) -> None:
    node = tmp_path / "far.xml"
    node.write_text(NODE)
    site = write_site(tmp_path, f"test://{node}", {"gone": refused})
    with open_session(site) as session:
        session.registry.add("base", base)
        assert projects.up(session, project_file(tmp_path, "pst"), wait=False).ok
        report = status_report(session, "pst", timeout_s=5)
    rows = {h.name: h for h in report.service_hosts}
    assert list(rows) == ["local", "far", "gone"]
    far = rows["far"]
    assert (far.state, far.cpus, far.memory_mib, far.vms) == ("up", 4, 2048, 1)
    assert far.uptime_s is not None and far.uptime_s > 0
    assert rows["local"].vms == 1
    gone = rows["gone"]
    assert gone.state == "unknown" and gone.vms == 0
    assert gone.error is not None and "cannot connect to service host 'gone'" in gone.error
    shown = report.as_json()
    assert {r["host"]: r["service_host"] for r in shown["rows"]} == {"a": "local", "b": "far"}
    assert set(shown["rows"][0]) >= {"project", "host", "state", "addresses", "service_host",
                                     "memory_mib", "vcpus", "uptime_s", "cpu_percent"}


def test_worker_bounds_come_from_the_cpus() -> None:
    assert [host_bound(c) for c in (None, 1, 2, 4, 64)] == [2, 4, 8, 16, 16]
    assert overall_bound(3, local_cpus=2) == 3
    assert overall_bound(100, local_cpus=2) == 8
    assert overall_bound(1000, local_cpus=32) == 64


def test_run_bounded_keeps_each_hosts_bound_and_isolates_failures() -> None:
    running: dict[str, int] = {"h1": 0, "h2": 0}
    peak: dict[str, int] = {"h1": 0, "h2": 0}
    lock = threading.Lock()

    def work(item: tuple[str, int]) -> int:
        host, number = item
        with lock:
            running[host] += 1
            peak[host] = max(peak[host], running[host])
        time.sleep(0.05)
        with lock:
            running[host] -= 1
        if host == "h2" and number == 3:
            raise CorralError(f"{host} refused item {number}")
        return number

    items = [(h, n) for n in range(8) for h in ("h1", "h2")]
    done, failed = run_bounded(work, items, where=lambda i: i[0],
                               per_host={"h1": 2, "h2": 3}.__getitem__, overall=4)
    assert peak["h1"] <= 2 and peak["h2"] <= 3 and peak["h1"] + peak["h2"] >= 3
    assert [items[i] for i in failed] == [("h2", 3)]
    assert len(done) == len(items) - 1 and done[0] == 0


def _counting() -> tuple[dict[str, int], Callable[[str], None]]:
    """A peak counter of items running at once per host, and the work that counts."""
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    lock = threading.Lock()

    def work(host: str) -> None:
        with lock:
            running[host] = running.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), running[host])
        time.sleep(0.05)
        with lock:
            running[host] -= 1

    return peak, work


def test_steps_running_at_once_share_each_hosts_places() -> None:
    """Two projects' VM steps at once (as ``up A B``) keep one host bound between
    them, not one each; a host's bound does not slow another host."""
    places = HostPlaces({"h1": 2, "h2": 3}.__getitem__)
    peak, work = _counting()

    def step(hosts: list[str]) -> None:
        run_bounded(work, hosts, where=lambda h: h, per_host=lambda _h: 2, overall=8,
                    places=places)

    projects = [threading.Thread(target=step, args=(["h1"] * 4 + ["h2"] * 3,), daemon=True)
                for _ in range(3)]
    for thread in projects:
        thread.start()
    for thread in projects:
        thread.join(10)
    assert peak == {"h1": 2, "h2": 3}


def test_a_step_inside_an_item_takes_no_place_of_its_own() -> None:
    """An item holding the only place on h1 runs a step of its own on h1 (a VM's
    volumes while it is built): it must finish, not wait for the place it holds."""
    places = HostPlaces(lambda _host: 1)
    peak, work = _counting()

    def item(host: str) -> None:
        run_bounded(work, [host] * 3, where=lambda h: h, per_host=lambda _h: 3, overall=3,
                    places=places)

    finished: list[object] = []
    outer = threading.Thread(target=lambda: finished.append(run_bounded(
        item, ["h1", "h1"], where=lambda h: h, per_host=lambda _h: 2, overall=2,
        places=places)), daemon=True)  # a deadlock must not keep the tests from ending
    outer.start()
    outer.join(10)
    assert finished and not outer.is_alive()
    assert peak == {"h1": 3}  # the inner step's own bound; the two outer items in turn

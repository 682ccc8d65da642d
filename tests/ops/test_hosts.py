"""``corral hosts``: every service host, reachable or not, within a deadline.

Three kinds of service host on this machine: libvirt's test driver (answers),
a TCP port nobody listens on (libvirt refuses at once with its reason) and a
TCP port that accepts and never says a word (the call would block; the
deadline reports it instead). The last good reading of a host that stops
answering comes from the state database.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.config import parse_site_config
from corral.ops.hosts import hosts
from corral.ops.session import Session


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    for connection in held:
        connection.close()
    server.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def site_file(tmp_path: Path, uris: dict[str, str]) -> Path:
    hosts_toml = "".join(f'[service_hosts.{n}]\nuri = "{u}"\n\n' for n, u in uris.items())
    path = tmp_path / "corral.toml"
    path.write_text(
        f'[paths]\ntemplates = "{tmp_path}/t"\nstate = "{tmp_path}/s.db"\n'
        f'runs = "{tmp_path}/r"\n\n{hosts_toml}'
    )
    return path


def session_of(path: Path) -> Session:
    return Session(parse_site_config(path.read_text(), path))


def test_every_host_is_reported_within_the_deadline(tmp_path: Path, silent_port: int) -> None:
    path = site_file(tmp_path, {
        "local": "test:///default",
        "gone": f"qemu+tcp://127.0.0.1:{free_port()}/system",
        "silent": f"qemu+tcp://127.0.0.1:{silent_port}/system",
    })
    with session_of(path) as session:
        started = time.monotonic()
        reports = {r.name: r for r in hosts(session, timeout_s=1.5)}
        took = time.monotonic() - started
    assert took < 3.0, took
    local, gone, silent = reports["local"], reports["gone"], reports["silent"]
    assert local.reachable and local.error is None and local.last_contact is not None
    assert local.facts.hypervisor == "TEST" and local.facts.cpus and local.facts.memory_mib
    assert local.facts.corral_vms == 0
    assert local.facts.memory_used_mib is not None
    assert not gone.reachable and "cannot connect to service host 'gone'" in (gone.error or "")
    assert gone.last_contact is None and gone.facts.cpus is None
    assert not silent.reachable and silent.error == "no answer within 1.5 s"


def test_a_host_that_stops_answering_shows_its_last_good_reading(tmp_path: Path) -> None:
    first = site_file(tmp_path, {"h1": "test:///default"})
    with session_of(first) as session:
        before = {r.name: r for r in hosts(session)}["h1"]
    assert before.reachable
    later = site_file(tmp_path, {"h1": f"qemu+tcp://127.0.0.1:{free_port()}/system"})
    with session_of(later) as session:
        after = {r.name: r for r in hosts(session)}["h1"]
    assert not after.reachable
    assert after.last_contact == before.last_contact or (
        after.last_contact is not None and before.last_contact is not None
        and abs((after.last_contact - before.last_contact).total_seconds()) < 1
    )
    assert after.facts == before.facts
    assert after.as_json()["cpus"] == before.facts.cpus


def test_the_command_prints_json_and_exits_non_zero_when_a_host_is_down(tmp_path: Path) -> None:
    path = site_file(tmp_path, {
        "local": "test:///default", "gone": f"qemu+tcp://127.0.0.1:{free_port()}/system",
    })
    done = subprocess.run(
        [sys.executable, "-m", "corral", "--config", str(path), "hosts", "--json"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )
    assert done.returncode == 5, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert rows["local"]["reachable"] is True and rows["gone"]["reachable"] is False
    assert set(rows["local"]) >= {
        "uri", "error", "last_contact", "hostname", "libvirt_version", "hypervisor",
        "hypervisor_version", "virt_type", "cpus", "memory_mib", "memory_free_mib",
        "memory_used_mib", "corral_vms", "containers",
    }
    assert rows["local"]["containers"] is False  # the test driver runs no containers


def test_status_answers_within_its_deadline_and_shows_a_silent_hosts_vms_as_unknown(
    tmp_path: Path, silent_port: int
) -> None:
    from corral.ops.status import status_report

    path = site_file(tmp_path, {
        "local": "test:///default", "silent": f"qemu+tcp://127.0.0.1:{silent_port}/system",
    })
    with session_of(path) as session:
        store = session.store
        assert store is not None
        store.touch_contacts(["silent"])
        (when, _) = store.last_contact("silent") or (None, "")
        model = {"name": "lab", "hosts": {"far": {"name": "far", "service_host": "silent"}}}
        store.record_project("lab", "lab.corral", json.dumps(model), "h")
        started = time.monotonic()
        report = status_report(session, timeout_s=1.0)
        took = time.monotonic() - started
    assert took < 2.5, took
    assert list(report.silent) == ["silent"] and report.silent["silent"] == "no answer within 1 s"
    (row,) = report.rows
    assert (row.host, row.state, row.service_host) == ("far", "unknown", "silent")
    assert when is not None and row.last_seen == when.isoformat()
    done = subprocess.run(
        [sys.executable, "-m", "corral", "--config", str(path), "status", "--json",
         "--timeout", "1"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False, timeout=30,
    )
    assert done.returncode == 5, done.stderr
    assert "service host silent did not answer (no answer within 1 s)" in done.stderr
    shown = json.loads(done.stdout)
    assert shown["rows"][0]["state"] == "unknown"
    silent = next(h for h in shown["service_hosts"] if h["name"] == "silent")
    assert silent["state"] == "unknown" and silent["vms"] == 1
    assert silent["error"] == "no answer within 1 s"

"""Benchmark: ``GET /api/v1/status`` of a real ``corral server`` under load while
an ``up`` runs.

The server is ``corral server`` in a process of its own (uvicorn on loopback),
with a scratch site: its own state database and templates (a copy of the
machine's ``tiny`` template, or a fresh build) and the real local libvirtd,
``qemu:///system``, as its one service host. A user (not an administrator,
so the status answer is cut to their projects as any user's is) and their
token are made with the operations layer, as ``corral user add`` does.

The user starts ``up`` of a project of ``--guests`` tiny guests (96 MiB, one
vCPU, TCG, one switch with DHCP, ``wait console``) through the API, as a job;
while it runs (defining, booting, waiting for readiness), wrk loads the
server for ``--seconds`` with ``--connections`` connections on two threads
(``wrk -t2 -c32 -d10s --latency``, the bearer token on every request):

* ``GET /api/v1/status`` — the figure the goal is about: at least 1,000
  successful answers a second with a 99th percentile latency under 100 ms,
  in both of its runs: first (while the ``up`` builds and starts its guests)
  and last (the floors in between, so they are measured in the same
  conditions); the ``up`` job runs in the server process, so its work is in
  the server's CPU time too;
* ``GET /api/v1/whoami`` — the same server's cheapest authenticated route
  (the token check and nothing else): the floor of any route of the API;
* ``constant app`` — ``bench/constant_app.py`` under uvicorn with the same
  options as ``corral server`` (one process, access log on): what uvicorn
  costs on this machine with no application at all.

Each load reports requests a second, successful answers a second, the 50th
and 99th percentile latencies, the answers that were not 2xx (a refused
request is fast and would flatter the figure: any makes the run fail), the
CPU time the answering process used per request (from ``/proc``: on a
shared machine the least disturbed figure, since the others depend on how
much of the CPUs the process got), the load average after it and whether
the ``up`` job was still running at its end.
The status figure is also given as a fraction of each floor's rate, measured
in the same run. Then the status answer is checked (the project's rows, how
old its reading is), the server stopped and every libvirt object of the
project removed by name, also after a failure or Ctrl-C.

    sudo .venv/bin/python bench/server_load.py [--guests 4] [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import libvirt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    interrupt_on_sigterm,
    project_name,
    register_tiny,
    require_root_for,
    scratch_dir,
    site_config,
    sweep,
)
from wrk_output import WrkOutputError, WrkReport, parse_wrk

from corral.config import SiteConfig, parse_site_config
from corral.ops.session import Session
from corral.ops.users import add_user

GOAL_RPS = 1000.0
GOAL_P99_S = 0.100
URI = "qemu:///system"
USER = "loader"
BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
STATUS, WHOAMI = "/api/v1/status", "/api/v1/whoami"
LISTEN_TIMEOUT_S = 60.0
JOB_START_TIMEOUT_S = 120.0


class Failed(RuntimeError):
    """Something the benchmark needs did not work; the message says what."""


@dataclass(frozen=True)
class Load:
    """One wrk run and what surrounded it."""

    label: str
    report: WrkReport
    load_average: float  # one-minute load average right after the run
    up_running: bool  # whether the up job was still running when wrk finished
    cpu_s: float  # CPU time the answering server process used during the run

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_s / self.report.requests * 1e3 if self.report.requests else 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def project_text(name: str, guests: int, subnet: int) -> str:
    """``guests`` tiny hosts on one switch with a host address, on DHCP."""
    hosts = "".join(
        f"host n{i:02d} {{\n    superclass node\n"
        f"    network eth0 {{\n        switch lan\n        address dhcp\n    }}\n}}\n"
        for i in range(guests))
    return (
        f"global {{ project {name} }}\n"
        "superclass node {\n    template tiny\n    qemu\n    memory 96M\n    vcpus 1\n"
        "    wait console\n}\n"
        f"switch lan {{ address 10.246.{subnet}.1/24 }}\n"
        f"{hosts}"
    )


def server_site(root: Path, port: int) -> SiteConfig:
    """The scratch site (``qemu:///system`` as ``local``), listening on loopback."""
    base = site_config(root, URI)
    assert base.source is not None
    text = base.source.read_text() + (
        f'\n[server]\nlisten = "127.0.0.1:{port}"\nallowed_networks = ["127.0.0.0/8"]\n')
    base.source.write_text(text)
    return parse_site_config(text, base.source)


def user_token(site: SiteConfig) -> str:
    """A new user's first token, made as ``corral user add`` makes it."""
    with Session(site) as session:
        return add_user(session, session.identity, USER).token.token


@contextmanager
def process(argv: list[str], log: Path, port: int, what: str) -> Iterator[subprocess.Popen[bytes]]:
    """A server process listening on ``port`` (its output in ``log``), stopped
    with SIGTERM afterwards (killed when it does not stop within 15 s)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as output:
        child = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, env=env,
                                 stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + LISTEN_TIMEOUT_S
        while True:
            if child.poll() is not None:
                raise Failed(f"{what} exited ({child.returncode}): {log.read_text()[-800:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise Failed(f"{what} did not listen within {LISTEN_TIMEOUT_S:g} s") from None
                time.sleep(0.1)
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def corral_server(config: Path, port: int, log: Path) -> Any:
    return process([sys.executable, "-m", "corral", "--config", str(config), "server",
                    "--listen", f"127.0.0.1:{port}"], log, port, "corral server")


def constant_server(port: int, log: Path) -> Any:
    return process([sys.executable, "-m", "uvicorn", "constant_app:app", "--app-dir",
                    str(BENCH), "--host", "127.0.0.1", "--port", str(port),
                    "--no-proxy-headers", "--no-server-header", "--log-level", "info"],
                   log, port, "the constant app")


def wrk(url: str, token: str | None, seconds: int, connections: int, threads: int) -> WrkReport:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    result = subprocess.run([*argv, url], capture_output=True, text=True, check=False,
                            timeout=seconds + 60)
    if result.returncode != 0:
        raise Failed(f"wrk failed: {(result.stderr or result.stdout).strip()}")
    try:
        return parse_wrk(result.stdout)
    except WrkOutputError as error:
        raise Failed(f"{error}:\n{result.stdout}") from None


def job_state(client: httpx.Client, href: str) -> dict[str, Any]:
    answer = client.get(href)
    if answer.status_code != 200:
        raise Failed(f"GET {href}: {answer.status_code} {answer.text[:300]}")
    job: dict[str, Any] = answer.json()
    return job


def start_up(client: httpx.Client, text: str) -> str:
    """POST the ``up`` and wait until its job runs; the job's address."""
    answer = client.post("/api/v1/projects/up", json={"text": text, "wait": True})
    if answer.status_code != 202:
        raise Failed(f"POST /api/v1/projects/up: {answer.status_code} {answer.text[:300]}")
    href: str = answer.json()["href"]
    deadline = time.monotonic() + JOB_START_TIMEOUT_S
    while (job := job_state(client, href))["state"] == "queued":
        if time.monotonic() > deadline:
            raise Failed(f"the up job stayed queued for {JOB_START_TIMEOUT_S:g} s")
        time.sleep(0.2)
    if job["state"] != "running":
        raise Failed(f"the up job ended before the load: {job['state']} {job.get('error')}")
    return href


def check_status(client: httpx.Client, project: str, guests: int) -> str:
    """The status answer holds the project's guests; a line saying so and how old
    its reading was."""
    answer = client.get(STATUS)
    if answer.status_code != 200:
        raise Failed(f"GET {STATUS}: {answer.status_code} {answer.text[:300]}")
    body = answer.json()
    rows = [r for r in body["rows"] if r["project"] == project]
    if len(rows) != guests or len(body["rows"]) != guests:
        raise Failed(f"status shows {len(rows)} of the project's {guests} hosts and "
                     f"{len(body['rows'])} rows in all (the user owns only this project)")
    states = sorted({r["state"] for r in rows})
    age = body.get("age_s")
    told = f"reading {age:.3f} s old" if isinstance(age, float | int) else "no reading age"
    return f"status: {len(rows)} rows of {project} ({', '.join(states)}), {told}"


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(label: str, url: str, token: str | None, args: argparse.Namespace,
             client: httpx.Client, href: str, server: subprocess.Popen[bytes]) -> Load:
    before = cpu_seconds(server.pid)
    report = wrk(url, token, args.seconds, args.connections, args.threads)
    used = cpu_seconds(server.pid) - before
    load = Load(label, report, os.getloadavg()[0], job_state(client, href)["state"] == "running",
                used)
    print(f"  {label:<30} {report.ok_per_s:8.0f} ok/s  p99 {report.p99_s * 1e3:7.1f} ms  "
          f"{load.cpu_ms_per_request:.2f} ms CPU/request  load {load.load_average:.2f}",
          flush=True)
    return load


def measure(root: Path, args: argparse.Namespace, project: str) -> int:
    port, floor_port = free_port(), free_port()
    site = server_site(root, port)
    print(f"tiny: {register_tiny(site, root)}", flush=True)
    token = user_token(site)
    assert site.source is not None
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    with corral_server(site.source, port, root / "server.log") as server, \
            constant_server(floor_port, root / "constant.log") as floor, \
            httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        if client.get(WHOAMI).status_code != 200:
            raise Failed("the user's token is refused")
        text = project_text(project, args.guests, int.from_bytes(os.urandom(1), "big"))
        print(f"uptime before: {uptime()}", flush=True)
        href = start_up(client, text)
        print(f"up of {args.guests} guests running ({href}); loads of {args.seconds} s, "
              f"{args.connections} connections, {args.threads} threads:", flush=True)
        loads = [
            run_load(f"GET {STATUS} (1st)", base + STATUS, token, args, client, href, server),
            run_load(f"GET {WHOAMI} (floor)", base + WHOAMI, token, args, client, href, server),
            run_load("constant app (uvicorn floor)", f"http://127.0.0.1:{floor_port}/", None,
                     args, client, href, floor),
            run_load(f"GET {STATUS} (2nd)", base + STATUS, token, args, client, href, server),
        ]
        print(check_status(client, project, args.guests), flush=True)
        print(f"uptime after: {uptime()}", flush=True)
        final = job_state(client, href)
    report(loads, final)
    refused = [load.label for load in loads if load.report.not_ok or load.report.socket_errors]
    if refused:
        print(f"server_load: failed: answers that were not 2xx, or socket errors, in "
              f"{', '.join(refused)}", file=sys.stderr)
        return 1
    return 0


def uptime() -> str:
    with open("/proc/loadavg") as source:
        one, five, fifteen = source.read().split()[:3]
    return f"load average {one}, {five}, {fifteen} on {os.cpu_count()} CPUs"


def report(loads: list[Load], job: dict[str, Any]) -> None:
    first, whoami, constant, second = loads
    print(f"\n{'load':<30} {'req/s':>8} {'ok/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'not ok':>7} "
          f"{'CPU ms/req':>10} {'load':>5} {'during up':>9}")
    for load in loads:
        r = load.report
        print(f"{load.label:<30} {r.requests_per_s:8.0f} {r.ok_per_s:8.0f} "
              f"{r.latency_s[50] * 1e3:7.1f} {r.p99_s * 1e3:7.1f} {r.not_ok + r.socket_errors:7d} "
              f"{load.cpu_ms_per_request:10.2f} {load.load_average:5.2f} "
              f"{'yes' if load.up_running else 'no':>9}")
    for status in (first, second):
        rate = status.report.ok_per_s
        for floor in (whoami, constant):
            print(f"{status.label} / {floor.label}: {rate / floor.report.ok_per_s:.2f} x its "
                  f"rate, p99 {status.report.p99_s / floor.report.p99_s:.1f} x, CPU per request "
                  f"{status.cpu_ms_per_request / floor.cpu_ms_per_request:.1f} x")
    worse = min((first, second), key=lambda load: load.report.ok_per_s)
    p99 = max(first.report.p99_s, second.report.p99_s)
    met = (worse.report.ok_per_s >= GOAL_RPS and p99 < GOAL_P99_S
           and not first.report.not_ok and not second.report.not_ok)
    print(f"goal: status at least {GOAL_RPS:,.0f} ok/s with p99 under {GOAL_P99_S * 1e3:.0f} ms "
          f"during an up, in both runs: {worse.report.ok_per_s:,.0f} ok/s at worst, p99 "
          f"{p99 * 1e3:.1f} ms at worst: {'met' if met else 'NOT met'}")
    print(f"the up job: {job['state']} ({job.get('outcome') or job.get('error') or '-'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, default=4, help="guests the up brings up")
    parser.add_argument("--seconds", type=int, default=10, help="length of each load")
    parser.add_argument("--connections", type=int, default=32, help="wrk's connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    args = parser.parse_args(argv)
    if not 1 <= args.guests <= 100 or args.seconds < 1 or args.connections < args.threads:
        parser.error("--guests 1..100, --seconds at least 1, --connections at least --threads")
    reason = require_root_for(URI)
    if reason or shutil.which("wrk") is None:
        print(f"server_load: {reason or 'wrk is not installed (make setup installs it)'}",
              file=sys.stderr)
        return 2
    project = project_name("sl")
    with interrupt_on_sigterm(), scratch_dir("corral-bench-load-") as root:
        try:
            return measure(root, args, project)
        except KeyboardInterrupt:
            print("interrupted: cleaning up", file=sys.stderr)
            return 130
        except (Failed, httpx.HTTPError) as error:
            print(f"server_load: failed: {error}", file=sys.stderr)
            return 1
        finally:
            conn = libvirt.open(URI)
            try:
                left = sweep(conn, project)
            finally:
                conn.close()
            print(f"removed {len(left)} libvirt object(s) of {project}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

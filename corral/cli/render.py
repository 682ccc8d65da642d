"""Tables and text for people; the JSON forms live with the data (``as_json``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.console import Console
from rich.table import Table


def _out() -> Console:
    """Stdout; when it is not a terminal (a pipe, a log), tables are not squeezed to 80 columns."""
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=True, width=200)
    return console


def project(model) -> None:
    console = _out()
    console.print(f"project {model.name}", markup=False)
    table = Table("host", "virt", "template", "memory", "vcpus", "service host", "interfaces")
    for name, host in model.hosts.items():
        nics = "; ".join(
            f"{i.name} {i.switch or '-'} {i.address or '-'} {i.mac}" for i in host.interfaces
        )
        table.add_row(
            name, str(host.virt), host.template or "-", f"{host.memory_mib} MiB",
            str(host.vcpus), host.service_host, nics,
        )
    console.print(table)
    if model.switches:
        switches = Table("switch", "mode", "address", "bridge")
        for name, sw in model.switches.items():
            switches.add_row(name, str(sw.mode), sw.address or "-", sw.bridge or "-")
        console.print(switches)


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def status(rows: Iterable) -> None:
    table = Table(
        "project", "host", "state", "addresses", "service host", "memory", "vcpus", "uptime",
        "cpu%",
    )
    count = 0
    for row in rows:
        count += 1
        cpu = "-" if row.cpu_percent is None else f"{row.cpu_percent:.1f}"
        table.add_row(
            row.project, row.host, row.state, ", ".join(row.addresses) or "-", row.service_host,
            "-" if row.memory_mib is None else f"{row.memory_mib} MiB",
            "-" if row.vcpus is None else str(row.vcpus), _uptime(row.uptime_s), cpu,
        )
    console = _out()
    if count:
        console.print(table)
    else:
        console.print("no hosts")


def readiness(outcomes: Iterable) -> None:
    console = _out()
    for outcome in outcomes:
        mark = "ready" if outcome.ready else "NOT READY"
        console.print(
            f"{outcome.target.domain}: {mark} after {outcome.seconds:.1f} s ({outcome.reason})",
            markup=False,
        )


def projects(rows: Iterable) -> None:
    table = Table("project", "hosts", "running", "switches", "service hosts", "source")
    for row in rows:
        table.add_row(
            row.name, str(row.hosts), str(row.running), str(row.switches),
            ", ".join(row.service_hosts), row.source or "-",
        )
    _out().print(table)


def templates(rows: Iterable) -> None:
    table = Table("name", "kind", "format", "virtual size", "added")
    for tpl in rows:
        size = "-" if tpl.virtual_size is None else f"{tpl.virtual_size // (1 << 20)} MiB"
        table.add_row(
            tpl.name, tpl.kind, tpl.format or "-", size, tpl.added_at.strftime("%Y-%m-%d %H:%M")
        )
    _out().print(table)


def facts(data: Mapping[str, object]) -> None:
    console = _out()
    width = max(len(k) for k in data) if data else 0
    for key, value in data.items():
        console.print(f"{key.ljust(width)}  {value}", markup=False)

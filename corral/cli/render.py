"""Tables and text for people; the JSON forms live with the data (``as_json``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from corral.model import Project
    from corral.ops.archive import ExportResult
    from corral.ops.archive_import import ImportResult
    from corral.ops.fleet import FleetResult
    from corral.ops.hosts import HostReport
    from corral.ops.many import ManyResult
    from corral.ops.projects import ProjectSummary, StatusRow
    from corral.ops.results import (
        ApplyResult,
        ChangeResult,
        Failed,
        MigrateResult,
        RemovalPreview,
        RemoveResult,
        StopResult,
        VmBatchResult,
        VmResult,
    )
    from corral.ops.status import ServiceHostRow, StatusReport
    from corral.ops.templates import TemplateCopies, TemplateListing


def stdout_console() -> Console:
    """Stdout; when it is not a terminal (a pipe, a log), tables are not squeezed to 80 columns."""
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=True, width=200)
    return console


def project(model: Project) -> None:
    console = stdout_console()
    console.print(f"project {model.name}", markup=False)
    table = Table(
        "host", "virt", "template", "memory", "vcpus", "service host", "interfaces", "disks"
    )
    for name, host in model.hosts.items():
        nics = "; ".join(
            f"{i.name} {i.switch or (f'bridge:{i.bridge}' if i.bridge else '-')} "
            f"{i.address or '-'} {i.mac}"
            for i in host.interfaces
        )
        disks = ", ".join(_disk(d.name, d.size_mib, d.path) for d in host.disks) or "-"
        table.add_row(
            name, str(host.virt), host.template or "-", f"{host.memory_mib} MiB",
            str(host.vcpus), host.service_host or "(scheduled)", nics, disks,
        )
    console.print(table)
    if model.switches:
        switches = Table("switch", "mode", "address", "bridge")
        for name, sw in model.switches.items():
            switches.add_row(name, str(sw.mode), sw.address or "-", sw.bridge or "-")
        console.print(switches)
    if model.groups:
        groups = Table("group", "members")
        for name, members in model.groups.items():
            groups.add_row(name, " ".join(members))
        console.print(groups)


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


def status(report: StatusReport) -> None:
    """One table, DVHMS ``vmctl status`` style: a row per service host (its state,
    uptime, CPU%, memory used/total, CPUs), followed by the rows of its VMs."""
    table = Table(
        "project", "host", "state", "addresses", "service host", "memory", "vcpus", "uptime",
        "cpu%", "disks",
    )
    by_host: dict[str, list[StatusRow]] = {}
    for row in report.rows:
        by_host.setdefault(row.service_host, []).append(row)
    for host in report.service_hosts:
        _host_row(table, host)
        for row in by_host.pop(host.name, []):
            _vm_row(table, row)
    for rows in by_host.values():  # placed on a service host the site no longer names
        for row in rows:
            _vm_row(table, row)
    console = stdout_console()
    if report.rows or report.service_hosts:
        console.print(table)
    else:
        console.print("no hosts")


def _host_row(table: Table, host: ServiceHostRow) -> None:
    state = host.state
    if host.state == "unknown":
        state += f" (last seen {host.last_seen[:19]})" if host.last_seen else " (never seen)"
    memory = "-"
    if host.memory_mib is not None:
        used = "?" if host.memory_used_mib is None else str(host.memory_used_mib)
        memory = f"{used}/{host.memory_mib} MiB"
    table.add_row(
        "service host", host.name, state, host.error or "-", host.name, memory,
        "-" if host.cpus is None else str(host.cpus), _uptime(host.uptime_s),
        "-" if host.cpu_percent is None else f"{host.cpu_percent:.1f}",
        f"{host.vms} VM(s)", style="bold",
    )


def _vm_row(table: Table, row: StatusRow) -> None:
    cpu = "-" if row.cpu_percent is None else f"{row.cpu_percent:.1f}"
    state = row.state
    if row.state == "unknown":
        state += f" (last seen {row.last_seen[:19]})" if row.last_seen else " (never seen)"
    disks = ", ".join(_disk(d.name, d.size_mib, d.path) for d in row.disks) or "-"
    table.add_row(
        row.project, row.host, state, ", ".join(row.addresses) or "-", row.service_host,
        "-" if row.memory_mib is None else f"{row.memory_mib} MiB",
        "-" if row.vcpus is None else str(row.vcpus), _uptime(row.uptime_s), cpu, disks,
    )


def hosts(reports: Iterable[HostReport]) -> None:
    table = Table(
        "service host", "state", "libvirt", "hypervisor", "virt", "cpus", "memory used/total",
        "corral vms", "last contact", "error",
    )
    for r in reports:
        f = r.facts
        memory = "-"
        if f.memory_mib is not None:
            used = f.memory_used_mib
            memory = f"{used if used is not None else '?'}/{f.memory_mib} MiB"
        seen = "never"
        if r.last_contact is not None:
            seen = r.last_contact.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            r.name, "up" if r.reachable else "UNREACHABLE", f.libvirt_version or "-",
            f"{f.hypervisor} {f.hypervisor_version}" if f.hypervisor else "-",
            (f.virt_type or "-") + (", lxc" if f.containers else ""),
            "-" if f.cpus is None else str(f.cpus), memory,
            "-" if f.corral_vms is None else str(f.corral_vms), seen, r.error or "",
        )
    stdout_console().print(table)


def fleet(result: FleetResult) -> None:
    console = stdout_console()
    for done in result.done:
        console.print(f"{done.project}.{done.host} ({done.service_host}): {done.outcome}",
                      markup=False)
    for target, reason in sorted(result.failed.items()):
        console.print(f"{target}: FAILED: {reason}", markup=False)
    if not result.done and not result.failed:
        console.print(f"no VM to {result.action}", markup=False)


def many_summary(many: ManyResult) -> None:
    """One line per project of a many-project ``up``, failures with their reason."""
    table = Table("project", "hosts", "ready", "outcome")
    for result in many.results:
        ready = sum(1 for r in result.readiness if r.ready)
        table.add_row(
            result.project, str(len(result.readiness)), f"{ready}/{len(result.readiness)}",
            "ok" if result.ok else "NOT READY",
        )
    for name, error in many.failed.items():
        table.add_row(name, "-", "-", f"FAILED: {error.message.splitlines()[0]}")
    stdout_console().print(table)


def _disk(name: str, size_mib: int | None, path: str | None) -> str:
    """``data 1G`` for a new disk, ``data /srv/images/x.img`` for an attached image."""
    return f"{name} {path if path is not None else _size(size_mib or 0)}"


def _size(mib: int) -> str:
    return f"{mib // 1024}G" if mib % 1024 == 0 else f"{mib}M"


def projects(rows: Iterable[ProjectSummary]) -> None:
    table = Table("project", "hosts", "running", "switches", "service hosts", "source")
    for row in rows:
        table.add_row(
            row.name, str(row.hosts), str(row.running), str(row.switches),
            ", ".join(row.service_hosts), row.source or "-",
        )
    stdout_console().print(table)


def templates(rows: Iterable[TemplateListing]) -> None:
    table = Table("name", "kind", "os", "virtual size", "packages", "sha256", "used by", "added")
    for row in rows:
        tpl = row.template
        size = "-" if tpl.virtual_size is None else f"{tpl.virtual_size // (1 << 20)} MiB"
        system = " ".join(p for p in (tpl.os, tpl.release) if p) or "-"
        main = tpl.disk or tpl.rootfs
        digest = tpl.sha256.get(main.name if main else "vmlinuz", "")
        table.add_row(
            tpl.name, tpl.kind, system, size, ", ".join(tpl.packages) or "-",
            digest[:12] or "-", ", ".join(row.used_by) or "-",
            tpl.added_at.strftime("%Y-%m-%d %H:%M"),
        )
    stdout_console().print(table)


def template_copies(found: TemplateCopies) -> None:
    """One row per copy a service host holds; then every copy that failed its
    check and every service host that could not be asked."""
    table = Table("service host", "template", "file", "sha256 prefix", "size", "path")
    for copy in found.copies:
        table.add_row(copy.service_host, copy.template, copy.file, copy.digest,
                      f"{copy.size / (1 << 20):.1f} MiB", copy.path)
    console = stdout_console()
    console.print(table)
    for problem in found.problems:
        console.print(f"corrupt: {problem}", markup=False)
    for name, why in found.unreachable.items():
        console.print(f"{name}: not asked: {why}", markup=False)


def facts(data: Mapping[str, object]) -> None:
    """``key  value`` lines; a list of values as ``a, b`` (the same read from JSON)."""
    console = stdout_console()
    width = max(len(k) for k in data) if data else 0
    for key, value in data.items():
        shown = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        console.print(f"{key.ljust(width)}  {shown}", markup=False)


_SYMBOL = {
    "create": "+", "update": "~", "start": "~", "migrate": ">", "recreate": "!", "remove": "-",
    "prune": "-",
}
_WHEN = {"live": "live", "next-boot": "at next boot", "rebuild": "new disk"}


def applied(result: ApplyResult) -> None:
    """What build/up/upgrade/start did: actions with their changes, hosts started,
    then each waited-for guest with its readiness and reason."""
    console = stdout_console()
    if not result.changed:
        console.print(f"project {result.project}: nothing to change", markup=False)
    else:
        console.print(f"project {result.project}:", markup=False)
    for action in result.actions:
        verb, _, noun = action.kind.partition("-")
        head = f"{_SYMBOL.get(verb, '~')} {noun} {action.target}: {verb}"
        if action.disk is not None:
            head = f"{_SYMBOL.get(verb, '~')} disk {action.disk} of host {action.target}: {verb}"
        if action.reason:
            head += f" ({action.reason})"
        console.print(head, markup=False)
        for change in action.changes:
            console.print(f"    {_change(change)}", markup=False)
    for host in result.started:
        console.print(f"started {host}", markup=False)
    for note in result.notes:
        console.print(f"note: {note}", markup=False)
    for outcome in result.readiness:
        mark = "ready" if outcome.ready else "NOT READY"
        console.print(
            f"{outcome.domain}: {mark} after {outcome.seconds:.1f} s ({outcome.reason})",
            markup=False,
        )
    _failures(result.project, result.failed)


def _failures(project: str, failed: Iterable[Failed]) -> None:
    """What a failing service host kept from being done, one line each, and how
    to finish the job."""
    failed = list(failed)
    if not failed:
        return
    console = stdout_console()
    console.print(f"project {project}: partly done; FAILED:", markup=False)
    for failure in failed:
        console.print(f"  {failure.describe()}", markup=False)
    console.print("rerun the same command once the service host is back to finish",
                  markup=False)


def _change(change: ChangeResult) -> str:
    """``memory_mib: 128 -> 192 (live)``; extra disks in words (plugged in, unplugged)."""
    when = _WHEN[change.applied.value]
    if change.field.startswith("disk ") and change.applied.value != "rebuild":
        name = change.field.split()[-1]
        if change.old is None:
            return f"disk {name} plugged in ({change.new}, {when})"
        if change.new is None:
            if _is_image(change.old):  # an existing file: no volume of Corral's
                return f"disk {name} unplugged ({change.old} stays as it is, {when})"
            return f"disk {name} unplugged (its volume is kept, {when})"
        if _is_image(change.old) or _is_image(change.new):
            return f"disk {name}: {change.old} -> {change.new} ({when})"
        return f"disk {name} grown {change.old} -> {change.new} ({when})"
    return f"{change.field}: {_value(change.old)} -> {_value(change.new)} ({when})"


def _is_image(view: object) -> bool:
    """True for how the planner shows an existing image (``image /srv/x.img``)."""
    return " /" in str(view)


def _value(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def stopped(result: StopResult) -> None:
    console = stdout_console()
    for host in result.hosts:
        console.print(f"{host.domain}: {host.outcome.replace('_', ' ')}", markup=False)
    _failures(result.project, result.failed)


def removal_summary(preview: RemovalPreview) -> str:
    return (
        f"project {preview.project}: {len(preview.domains)} domain(s) "
        f"{', '.join(preview.domains)}; {len(preview.networks)} network(s) "
        f"{', '.join(preview.networks)}; {len(preview.volumes)} volume(s) (disks are deleted)"
    )


def removed(result: RemoveResult) -> None:
    console = stdout_console()
    if not result.removed and not result.failed:
        console.print(f"project {result.project}: nothing to remove", markup=False)
    for item in result.removed:
        if item.kind == "domain":
            line = f"- host {item.host}: removed ({item.name})"
        elif item.kind == "network":
            line = f"- switch {item.host}: removed ({item.name})"
        else:
            line = f"- disks of {item.host}: removed"
        console.print(line, markup=False)
    _failures(result.project, result.failed)


def vm_done(result: VmResult) -> None:
    stdout_console().print(f"{result.target}: {result.outcome.replace('_', ' ')}", markup=False)


def vm_batch(result: VmBatchResult) -> None:
    """Each VM done, then each that failed with its service host and reason."""
    console = stdout_console()
    for done in result.done:
        console.print(f"{done.target}: {done.outcome.replace('_', ' ')}", markup=False)
    for failure in result.failed:
        where = f" (on service host {failure.service_host})" if failure.service_host else ""
        console.print(f"{failure.name}{where}: FAILED: {failure.reason}", markup=False)


def migrated(result: MigrateResult) -> None:
    console = stdout_console()
    if result.mode == "none":
        console.print(f"{result.target}: on {result.destination} already", markup=False)
    else:
        how = "live" if result.mode == "live" else "stopped"
        storage = "shared storage" if result.shared_storage else "disks copied"
        console.print(
            f"{result.target}: moved {how} from {result.source} to {result.destination} "
            f"({storage})", markup=False,
        )
    if result.file_updated:
        console.print(f"project file updated: {result.file_note}", markup=False)
    else:
        console.print(f"project file not changed; to keep the move: {result.file_note}",
                      markup=False)


def exported(result: ExportResult) -> None:
    """Where the archive went, its size, and how long each running VM was paused."""
    console = stdout_console()
    what = f"host {result.standalone} of project" if result.standalone else "project"
    kind = "flattened disks" if result.flattened else "overlays and their templates"
    console.print(f"{what} {result.project} exported to {result.path} "
                  f"({result.size / (1 << 20):.1f} MiB, {kind})", markup=False)
    for host, seconds in sorted(result.paused.items()):
        console.print(f"paused {host} for {seconds:.1f} s while its disks were read",
                      markup=False)
    if result.standalone:
        console.print(f"boot it without Corral: virsh define "
                      f"{result.path}/hosts/{result.standalone}/standalone.xml", markup=False)


def imported(result: ImportResult) -> None:
    """The project file written, what became of each template, then the build."""
    console = stdout_console()
    console.print(f"project {result.project} imported from {result.archive}; its file: "
                  f"{result.project_file}", markup=False)
    for name, fate in sorted(result.templates.items()):
        console.print(f"template {name}: {fate}", markup=False)
    applied(result.applied)
    if result.applied.failed:
        console.print(f"finish it with: corral build {result.project_file}", markup=False)
    else:
        console.print(f"start it with: corral start -p {result.project}", markup=False)

"""The operations through a management server: each method one route of the API.

The routes are those of ``docs/server.md``. A project file is read here (the
same errors as on this machine when it cannot be) and sent as text under its
own name, so the server's positioned errors name it as the user wrote it. A
long operation is a job: it is started, its events are shown as they happen
(:mod:`corral.client.jobs`) and its result is decoded like any other answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from corral.client import decode
from corral.client.jobs import follow
from corral.client.transport import Transport
from corral.errors import CorralError, LocalOnly, SourceErrors
from corral.ops.reporting import Reporter

if TYPE_CHECKING:
    from corral.client.interface import Confirm
    from corral.convert.result import Conversion
    from corral.images.registry import Template
    from corral.lang.key_edit import KeyChange
    from corral.model import Project
    from corral.ops.access import Access, ProjectShares
    from corral.ops.archive import ExportResult
    from corral.ops.archive_import import ImportResult
    from corral.ops.fleet import FleetResult
    from corral.ops.hosts import HostReport
    from corral.ops.identity import Scope
    from corral.ops.inventory import Inventory
    from corral.ops.many import ManyResult
    from corral.ops.projects import ProjectSummary
    from corral.ops.reach import SshTarget
    from corral.ops.results import (
        ApplyResult,
        MigrateResult,
        RemovalPreview,
        RemoveResult,
        StopResult,
        VmBatchResult,
        VmResult,
    )
    from corral.ops.status import StatusReport
    from corral.ops.templates import DebianOptions, TemplateCopies, TemplateListing
    from corral.ops.tokens import NewToken
    from corral.ops.users import NewUser
    from corral.plan import Plan
    from corral.state.accounts import Quota, ShareRecord, TokenRecord, UserRecord, UserRemoval
    from corral.state.audit import AuditEntry

T = TypeVar("T")
# What the API accepts as a file's name (corral.server.models.NAME).
_SENDABLE = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
# A project's name as check_name accepts it: no dot, so a file name is told apart.
_PROJECT = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def _part(value: str) -> str:
    """One path segment, escaped."""
    return quote(value, safe="")


class RemoteOperations:
    """:class:`~corral.client.interface.Operations` through the server of ``transport``,
    as the user of its token."""

    def __init__(self, transport: Transport, reporter: Reporter) -> None:
        self.transport = transport
        self.reporter = reporter
        self.where = transport.remote.url

    # ---- helpers
    def _file(self, path: Path, **options: Any) -> dict[str, Any]:
        """The body of a project file: its text and a name the server accepts, which
        its positioned errors are mapped back from."""
        from corral.ops.source import ProjectSource

        source = ProjectSource.from_path(path)  # unreadable: the local error, positioned
        name = path.name if _SENDABLE.match(path.name) else (
            "project.yaml" if path.suffix in (".yaml", ".yml") else "project.corral")
        self.transport.names[name] = str(path)
        return {"text": source.text, "name": name, **options}

    def _job(self, method: str, route: str, result: Callable[[dict[str, Any]], T],
             **kwargs: Any) -> T:
        accepted = self.transport.json(method, route, **kwargs)
        return follow(self.transport, accepted, self.reporter, result)

    # ---- project files
    def validate(self, path: Path) -> SourceErrors | None:
        try:
            self.transport.json("POST", "/validate", json=self._file(path))
        except SourceErrors as errors:
            return errors
        return None

    def show(self, path: Path) -> Project:
        return decode.project(self.transport.json("POST", "/show", json=self._file(path)))

    def plan(self, path: Path) -> Plan:
        return decode.plan(self.transport.json("POST", "/plan", json=self._file(path)))

    def up(self, path: Path, *, recreate: bool, wait: bool, wait_lock: bool) -> ApplyResult:
        return self._job("POST", "/projects/up", decode.applied, json=self._file(
            path, recreate=recreate, wait=wait, wait_lock=wait_lock))

    def up_many(self, paths: Sequence[Path], *, recreate: bool, wait: bool,
                wait_lock: bool) -> ManyResult:
        """Every project's job started at once (they run side by side on the server),
        then each followed in turn; one that fails does not stop the others."""
        from corral.ops.many import ManyResult

        started: list[tuple[Path, dict[str, Any] | CorralError]] = []
        for path in paths:
            try:
                started.append((path, self.transport.json("POST", "/projects/up", json=self._file(
                    path, recreate=recreate, wait=wait, wait_lock=wait_lock))))
            except CorralError as error:
                started.append((path, error))
        results: list[ApplyResult] = []
        failed: dict[str, CorralError] = {}
        for path, job in started:
            try:
                if isinstance(job, CorralError):
                    raise job
                results.append(follow(self.transport, job, self.reporter, decode.applied))
            except CorralError as error:
                failed[str(path)] = error
        return ManyResult(tuple(results), failed)

    def build(self, path: Path, *, recreate: bool, wait_lock: bool) -> ApplyResult:
        return self._job("POST", "/projects/build", decode.applied, json=self._file(
            path, recreate=recreate, wait_lock=wait_lock))

    def upgrade(self, path: Path, *, recreate: bool, prune: bool,
                wait_lock: bool) -> ApplyResult:
        return self._job("POST", "/projects/upgrade", decode.applied, json=self._file(
            path, recreate=recreate, prune=prune, wait_lock=wait_lock))

    def set_key(self, target: str, path: str, values: list[str] | None) -> KeyChange:
        """``target`` names a project: the server edits the file it keeps for it."""
        if not _PROJECT.match(target):
            raise LocalOnly(
                f"through a server, `corral set` edits the file the server keeps for a "
                f"project: give the project's name, not {target!r}",
                hint="to edit a file of this machine, run it without --server")
        return decode.key_change(self.transport.json(
            "PATCH", f"/projects/{_part(target)}/file", json={"path": path, "value": values}))

    # ---- projects by name
    def start(self, project: str, hosts: list[str] | None, *, wait: bool) -> ApplyResult:
        return self._job("POST", f"/projects/{_part(project)}/start", decode.applied,
                         json={"hosts": hosts, "wait": wait})

    def stop(self, project: str, hosts: list[str] | None, *, timeout_s: float) -> StopResult:
        return self._job("POST", f"/projects/{_part(project)}/stop", decode.stopped,
                         json={"hosts": hosts, "timeout_s": timeout_s})

    def everything(self, action: str, *, timeout_s: float, project: str | None,
                   confirm: Confirm | None) -> FleetResult:
        """``--all`` (``POST /fleet``), or the one action the CLI asks of every VM of
        one project, ``suspend -p`` (``POST /projects/{project}/suspend``)."""
        if project is not None:  # the one fleet action of a project: suspend -p
            return self._job("POST", f"/projects/{_part(project)}/suspend", decode.fleet)
        if confirm is not None:
            hosts = self.hosts(timeout_s=5.0)
            confirm(sum(h.facts.corral_vms or 0 for h in hosts), len(hosts))
        return self._job("POST", "/fleet", decode.fleet,
                         json={"action": action, "timeout_s": timeout_s})

    def list_projects(self) -> list[ProjectSummary]:
        return [decode.summary(p) for p in self.transport.json("GET", "/projects")]

    def removal(self, project: str) -> RemovalPreview:
        return decode.removal(self.transport.json("GET", f"/projects/{_part(project)}/removal"))

    def remove(self, project: str, *, wait_lock: bool) -> RemoveResult:
        return self._job("DELETE", f"/projects/{_part(project)}", decode.removed,
                         params={"wait_lock": wait_lock})

    def status(self, project: str | None, *, timeout_s: float,
               group: str | None = None) -> StatusReport:
        params: dict[str, Any] = {"timeout_s": timeout_s}
        if project is not None:
            params["project"] = project
        if group is not None:
            params["group"] = group
        return decode.status(self.transport.json("GET", "/status", params=params))

    # ---- the site
    def info(self, service_host: str | None) -> dict[str, object]:
        params = {"service_host": service_host} if service_host is not None else {}
        return dict(self.transport.json("GET", "/info", params=params))

    def hosts(self, *, timeout_s: float) -> list[HostReport]:
        return [decode.host_report(h) for h in self.transport.json(
            "GET", "/hosts", params={"timeout_s": timeout_s})]

    def templates(self) -> list[TemplateListing]:
        return [decode.template_listing(t) for t in self.transport.json("GET", "/templates")]

    def template_copies(self, service_host: str | None, *, verify: bool) -> TemplateCopies:
        params: dict[str, Any] = {}
        if service_host is not None:
            params["service_host"] = service_host
        if verify:  # it deletes the copies that differ: a change, so a POST
            return decode.template_copies(self.transport.json(
                "POST", "/templates/copies/verify", params=params))
        return decode.template_copies(self.transport.json("GET", "/templates/copies",
                                                          params=params))

    def export(self, project: str, directory: Path, *, compress: bool, flatten: bool,
               host: str | None) -> ExportResult:
        raise _archive_refused("export", self.where)

    def import_project(self, project: str, directory: Path, *, new_name: str | None,
                       service_host: str | None, replace: bool) -> ImportResult:
        raise _archive_refused("import", self.where)

    def convert(self, path: Path, source_format: str | None) -> Conversion:
        raise LocalOnly(
            f"`corral convert` cannot run against a server ({self.where}): it reads and "
            "writes files of this machine", hint="run it without --server")

    def add_template(self, name: str, file: Path | None, kernel: Path | None,
                     initrd: Path | None, cmdline: str | None, *,
                     disk_boots: bool) -> Template:
        raise LocalOnly(
            f"`corral template add` cannot run against a server ({self.where}): it registers "
            "image files of this machine; a server registers files of its own machine",
            hint="run it on the server's machine, without --server")

    def remove_template(self, name: str) -> None:
        self.transport.json("DELETE", f"/templates/{_part(name)}")

    def build_template(self, builder: str, name: str | None, debian: DebianOptions | None,
                       for_host: tuple[Path, str] | None = None) -> Template:
        body: dict[str, object] = {"name": builder, "template": name}
        if debian is not None:
            body |= {"release": debian.release, "packages": list(debian.packages),
                     "size": debian.size, "rootfs": debian.rootfs}
        if for_host is not None:
            body |= {"project": self._file(for_host[0]), "host": for_host[1]}
        return self._job("POST", "/templates/build", decode.template, json=body)

    # ---- one VM, or several
    def vm_action(self, target: str, action: str) -> VmResult:
        return decode.vm_result(self.transport.json(
            "POST", f"/vms/{_part(target)}/{_part(action)}"))

    def vm_action_each(self, targets: list[str], action: str,
                       timeout_s: float) -> VmBatchResult:
        return self._job("POST", f"/vms/batch/{_part(action)}", decode.vm_batch,
                         json={"targets": targets, "timeout_s": timeout_s})

    def vm_shutdown(self, target: str, timeout_s: float) -> VmResult:
        return decode.vm_result(self.transport.json(
            "POST", f"/vms/{_part(target)}/shutdown", json={"timeout_s": timeout_s}))

    def vm_set_memory(self, target: str, memory: str) -> VmResult:
        return decode.vm_result(self.transport.json(
            "POST", f"/vms/{_part(target)}/memory", json={"memory": memory}))

    def vm_set_vcpus(self, target: str, count: int) -> VmResult:
        return decode.vm_result(self.transport.json(
            "POST", f"/vms/{_part(target)}/vcpus", json={"count": count}))

    def vm_set_memory_each(self, targets: list[str], memory: str) -> VmBatchResult:
        return self._job("POST", "/vms/batch/memory", decode.vm_batch,
                         json={"targets": targets, "memory": memory})

    def vm_set_vcpus_each(self, targets: list[str], count: int) -> VmBatchResult:
        return self._job("POST", "/vms/batch/vcpus", decode.vm_batch,
                         json={"targets": targets, "count": count})

    def vm_describe(self, target: str) -> str:
        return self.transport.text("GET", f"/vms/{_part(target)}/xml")

    def ssh_targets(self, project: str, host: str | None,
                    user: str | None) -> list[SshTarget]:
        from corral.ops.reach import SshTarget as Found

        params = {k: v for k, v in (("host", host), ("user", user)) if v is not None}
        found = self.transport.json("GET", f"/projects/{_part(project)}/ssh", params=params)
        return [Found(**t) for t in found]

    def inventory(self, project: str, user: str | None) -> Inventory:
        params = {"user": user} if user is not None else {}
        return decode.inventory(self.transport.json(
            "GET", f"/projects/{_part(project)}/inventory", params=params))

    def vm_log(self, target: str) -> str:
        return self.transport.text("GET", f"/vms/{_part(target)}/log")

    def vm_migrate(self, target: str, service_host: str, *, offline: bool, update_file: bool,
                   wait_lock: bool, timeout_s: float) -> MigrateResult:
        return self._job("POST", f"/vms/{_part(target)}/migrate", decode.migrated, json={
            "service_host": service_host, "offline": offline, "update_file": update_file,
            "wait_lock": wait_lock, "timeout_s": timeout_s})

    def vm_console(self, target: str) -> None:
        from corral.client.console import attach

        attach(self.transport, target)

    # ---- users, tokens, shares, the audit log: as the token's user
    def add_user(self, name: str, *, admin: bool, quota: Quota) -> NewUser:
        return decode.new_user(self.transport.json("POST", "/users", json={
            "name": name, "admin": admin, "quota": {
                "max_vms": quota.max_vms, "max_memory_mib": quota.max_memory_mib,
                "max_vcpus": quota.max_vcpus}}))

    def set_password(self, name: str, password: str) -> None:
        self.transport.request("PUT", f"/users/{_part(name)}/password",
                               json={"password": password})

    def list_users(self) -> list[UserRecord]:
        return [decode.user(u) for u in self.transport.json("GET", "/users")]

    def get_user(self, name: str) -> UserRecord:
        return decode.user(self.transport.json("GET", f"/users/{_part(name)}"))

    def change_quota(self, name: str, changes: dict[str, int | None]) -> UserRecord:
        return decode.user(self.transport.json("PATCH", f"/users/{_part(name)}/quota",
                                               json=changes))

    def user_removal(self, name: str) -> UserRemoval:
        return decode.user_removal(self.transport.json("GET", f"/users/{_part(name)}/removal"))

    def remove_user(self, name: str) -> UserRemoval:
        return decode.user_removal(self.transport.json("DELETE", f"/users/{_part(name)}"))

    def create_token(self, user: str, label: str, scope: Scope) -> NewToken:
        from corral.ops.identity import Scope

        return decode.new_token(self.transport.json("POST", "/tokens", json={
            "user": user, "name": label, "metrics_only": scope is Scope.METRICS}))

    def list_tokens(self, user: str | None) -> list[TokenRecord]:
        params = {"user": user} if user is not None else {}
        return [decode.token(t) for t in self.transport.json("GET", "/tokens", params=params)]

    def revoke_token(self, token_id: int) -> TokenRecord:
        return decode.token(self.transport.json("DELETE", f"/tokens/{token_id}"))

    def share(self, project: str, user: str, access: Access) -> ShareRecord:
        return decode.share(self.transport.json(
            "PUT", f"/projects/{_part(project)}/shares/{_part(user)}",
            json={"access": access.value}))

    def unshare(self, project: str, user: str) -> None:
        self.transport.request("DELETE", f"/projects/{_part(project)}/shares/{_part(user)}")

    def shares(self, project: str) -> ProjectShares:
        return decode.shares(self.transport.json("GET", f"/projects/{_part(project)}/shares"))

    def audit(self, *, since: str | None, user: str | None, limit: int) -> list[AuditEntry]:
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["since"] = since
        if user is not None:
            params["user"] = user
        return [decode.audit_entry(e) for e in self.transport.json("GET", "/audit",
                                                                   params=params)]


def _archive_refused(command: str, where: str) -> LocalOnly:
    """Archives are files of the caller's machine, which a server cannot reach."""
    return LocalOnly(
        f"`corral {command}` cannot run against a server ({where}): it reads and writes "
        "archive files of this machine", hint="run it on the server's machine, without --server")

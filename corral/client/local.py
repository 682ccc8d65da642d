"""The operations on this machine: each method one call of :mod:`corral.ops`."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from corral.errors import BackendError, SourceErrors

if TYPE_CHECKING:
    from corral.client.interface import Confirm
    from corral.config import SiteConfig
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
    from corral.ops.session import Session
    from corral.ops.source import ProjectSource
    from corral.ops.status import StatusReport
    from corral.ops.templates import DebianOptions, TemplateCopies, TemplateListing
    from corral.ops.tokens import NewToken
    from corral.ops.users import NewUser
    from corral.plan import Plan
    from corral.state.accounts import Quota, ShareRecord, TokenRecord, UserRecord, UserRemoval
    from corral.state.audit import AuditEntry


def _source(path: Path) -> ProjectSource:
    from corral.ops.source import ProjectSource

    return ProjectSource.from_path(path)


class LocalOperations:
    """:class:`~corral.client.interface.Operations` on this machine, as the site
    administrator. The session opens on first use; reading a file needs only the site."""

    where = "local"

    def __init__(self, session: Callable[[], Session], site: Callable[[], SiteConfig]) -> None:
        self._session = session
        self._site = site

    # ---- project files
    def validate(self, path: Path) -> SourceErrors | None:
        from corral.ops.projects import validate_source

        try:
            return validate_source(_source(path), self._site())
        except SourceErrors as unreadable:
            return unreadable

    def show(self, path: Path) -> Project:
        from corral.ops.projects import load_source

        return load_source(_source(path), self._site())

    def plan(self, path: Path) -> Plan:
        from corral.ops.projects import plan_source

        return plan_source(self._session(), _source(path))

    def up(self, path: Path, *, recreate: bool, wait: bool, wait_lock: bool) -> ApplyResult:
        from corral.ops.projects import up

        return up(self._session(), _source(path), recreate=recreate, wait=wait,
                  wait_lock=wait_lock)

    def up_many(self, paths: Sequence[Path], *, recreate: bool, wait: bool,
                wait_lock: bool) -> ManyResult:
        from corral.ops.many import up_many

        return up_many(self._session(), list(paths), recreate=recreate, wait=wait,
                       wait_lock=wait_lock)

    def build(self, path: Path, *, recreate: bool, wait_lock: bool) -> ApplyResult:
        from corral.ops.projects import build

        return build(self._session(), _source(path), recreate=recreate, wait_lock=wait_lock)

    def upgrade(self, path: Path, *, recreate: bool, prune: bool,
                wait_lock: bool) -> ApplyResult:
        from corral.ops.projects import upgrade

        return upgrade(self._session(), _source(path), recreate=recreate, prune=prune,
                       wait_lock=wait_lock)

    def set_key(self, target: str, path: str, values: list[str] | None) -> KeyChange:
        from corral.ops.edit_file import edit_file

        return edit_file(self._site(), Path(target), path, values)

    # ---- projects by name
    def start(self, project: str, hosts: list[str] | None, *, wait: bool) -> ApplyResult:
        from corral.ops.projects import start

        return start(self._session(), project, hosts, wait=wait)

    def stop(self, project: str, hosts: list[str] | None, *, timeout_s: float) -> StopResult:
        from corral.ops.projects import stop

        return stop(self._session(), project, hosts, timeout_s=timeout_s)

    def everything(self, action: str, *, timeout_s: float, project: str | None,
                   confirm: Confirm | None) -> FleetResult:
        from corral.ops.fleet import act_on_all, survey

        session = self._session()
        fleet = survey(session)
        if confirm is not None:
            confirm(len(fleet.vms), len(session.service_host_names()))
        return act_on_all(session, action, timeout_s=timeout_s, project=project, fleet=fleet)

    def list_projects(self) -> list[ProjectSummary]:
        from corral.ops.projects import list_projects

        return list_projects(self._session())

    def removal(self, project: str) -> RemovalPreview:
        from corral.ops.projects import describe_removal

        return describe_removal(self._session(), project)

    def remove(self, project: str, *, wait_lock: bool) -> RemoveResult:
        from corral.ops.projects import remove

        return remove(self._session(), project, wait_lock=wait_lock)

    def status(self, project: str | None, *, timeout_s: float,
               group: str | None = None) -> StatusReport:
        from corral.ops.groups import status_of_group
        from corral.ops.status import status_report

        session = self._session()
        return status_of_group(session, project, group, lambda name: status_report(
            session, name, timeout_s=timeout_s))

    # ---- the site
    def info(self, service_host: str | None) -> dict[str, object]:
        from corral.ops.projects import host_info

        return host_info(self._session(), service_host)

    def hosts(self, *, timeout_s: float) -> list[HostReport]:
        from corral.ops.hosts import hosts

        return hosts(self._session(), timeout_s=timeout_s)

    def templates(self) -> list[TemplateListing]:
        from corral.ops.templates import list_templates

        return list_templates(self._session())

    def template_copies(self, service_host: str | None, *, verify: bool) -> TemplateCopies:
        from corral.ops.templates import template_copies

        return template_copies(self._session(), service_host, verify=verify)

    def export(self, project: str, directory: Path, *, compress: bool, flatten: bool,
               host: str | None) -> ExportResult:
        from corral.ops.archive import export_project

        return export_project(self._session(), project, directory, compress=compress,
                              flatten=flatten, host=host)

    def import_project(self, project: str, directory: Path, *, new_name: str | None,
                       service_host: str | None, replace: bool) -> ImportResult:
        from corral.ops.archive_import import import_project

        return import_project(self._session(), project, directory, new_name=new_name,
                              service_host=service_host, replace=replace)

    def convert(self, path: Path, source_format: str | None) -> Conversion:
        from corral.ops.convert import convert_file

        return convert_file(path, source_format)

    def add_template(self, name: str, file: Path | None, kernel: Path | None,
                     initrd: Path | None, cmdline: str | None, *,
                     disk_boots: bool) -> Template:
        from corral.ops.templates import add_template

        return add_template(self._session(), name, file, kernel, initrd, cmdline,
                            disk_boots=disk_boots)

    def remove_template(self, name: str) -> None:
        from corral.ops.templates import remove_template

        remove_template(self._session(), name)

    def build_template(self, builder: str, name: str | None, debian: DebianOptions | None,
                       for_host: tuple[Path, str] | None = None) -> Template:
        from corral.ops.templates import build_template

        return build_template(self._session(), builder, name, debian, for_host)

    # ---- one VM, or several
    def vm_action(self, target: str, action: str) -> VmResult:
        from corral.ops.vms import vm_action

        return vm_action(self._session(), target, action)

    def vm_action_each(self, targets: list[str], action: str,
                       timeout_s: float) -> VmBatchResult:
        from corral.ops.vms import vm_action_each

        return vm_action_each(self._session(), targets, action, timeout_s=timeout_s)

    def vm_shutdown(self, target: str, timeout_s: float) -> VmResult:
        from corral.ops.vms import vm_shutdown

        return vm_shutdown(self._session(), target, timeout_s)

    def vm_set_memory(self, target: str, memory: str) -> VmResult:
        from corral.ops.vms import vm_set_memory

        return vm_set_memory(self._session(), target, memory)

    def vm_set_vcpus(self, target: str, count: int) -> VmResult:
        from corral.ops.vms import vm_set_vcpus

        return vm_set_vcpus(self._session(), target, count)

    def vm_set_memory_each(self, targets: list[str], memory: str) -> VmBatchResult:
        from corral.ops.vms import vm_set_memory_each

        return vm_set_memory_each(self._session(), targets, memory)

    def vm_set_vcpus_each(self, targets: list[str], count: int) -> VmBatchResult:
        from corral.ops.vms import vm_set_vcpus_each

        return vm_set_vcpus_each(self._session(), targets, count)

    def vm_describe(self, target: str) -> str:
        from corral.ops.vms import vm_describe

        return vm_describe(self._session(), target)

    def ssh_targets(self, project: str, host: str | None,
                    user: str | None) -> list[SshTarget]:
        from corral.ops.reach import ssh_targets

        return ssh_targets(self._session(), project, host, user)

    def inventory(self, project: str, user: str | None) -> Inventory:
        from corral.ops.inventory import inventory

        return inventory(self._session(), project, user)

    def vm_log(self, target: str) -> str:
        from corral.ops.vms import vm_console_log

        return vm_console_log(self._session(), target)

    def vm_migrate(self, target: str, service_host: str, *, offline: bool, update_file: bool,
                   wait_lock: bool, timeout_s: float) -> MigrateResult:
        from corral.ops.migrate import vm_migrate

        return vm_migrate(self._session(), target, service_host, offline=offline,
                          update_file=update_file, wait_lock=wait_lock, timeout_s=timeout_s)

    def vm_console(self, target: str) -> None:
        """``virsh console`` on this terminal until the user leaves (Ctrl-])."""
        from corral.ops.vms import vm_console_command

        argv = vm_console_command(self._session(), target)
        code = subprocess.run(argv, check=False).returncode
        if code not in (0, 1):  # virsh console ends with 1 when the guest goes away
            raise BackendError(f"console of {target} ended with exit code {code}")

    # ---- users, tokens, shares, the audit log: as the site administrator
    def add_user(self, name: str, *, admin: bool, quota: Quota) -> NewUser:
        from corral.ops.users import add_user

        session = self._session()
        return add_user(session, session.identity, name, admin=admin, quota=quota)

    def set_password(self, name: str, password: str) -> None:
        from corral.ops.users import set_password

        session = self._session()
        set_password(session, session.identity, name, password)

    def list_users(self) -> list[UserRecord]:
        from corral.ops.users import list_users

        session = self._session()
        return list_users(session, session.identity)

    def get_user(self, name: str) -> UserRecord:
        from corral.ops.users import get_user

        session = self._session()
        return get_user(session, session.identity, name)

    def change_quota(self, name: str, changes: dict[str, int | None]) -> UserRecord:
        from corral.ops.users import change_quota

        session = self._session()
        return change_quota(session, session.identity, name, changes)

    def user_removal(self, name: str) -> UserRemoval:
        from corral.ops.users import removal_preview

        session = self._session()
        return removal_preview(session, session.identity, name)

    def remove_user(self, name: str) -> UserRemoval:
        from corral.ops.users import remove_user

        session = self._session()
        return remove_user(session, session.identity, name)

    def create_token(self, user: str, label: str, scope: Scope) -> NewToken:
        from corral.ops.tokens import create_token

        session = self._session()
        return create_token(session, session.identity, user, label, scope)

    def list_tokens(self, user: str | None) -> list[TokenRecord]:
        from corral.ops.tokens import list_tokens

        session = self._session()
        return list_tokens(session, session.identity, user)

    def revoke_token(self, token_id: int) -> TokenRecord:
        from corral.ops.tokens import revoke_token

        session = self._session()
        return revoke_token(session, session.identity, token_id)

    def share(self, project: str, user: str, access: Access) -> ShareRecord:
        from corral.ops.access import share_project

        session = self._session()
        return share_project(session, session.identity, project, user, access)

    def unshare(self, project: str, user: str) -> None:
        from corral.ops.access import unshare_project

        session = self._session()
        unshare_project(session, session.identity, project, user)

    def shares(self, project: str) -> ProjectShares:
        from corral.ops.access import project_shares

        session = self._session()
        return project_shares(session, session.identity, project)

    def audit(self, *, since: str | None, user: str | None, limit: int) -> list[AuditEntry]:
        from corral.ops.audit import entries

        session = self._session()
        return entries(session, session.identity, since=since, user=user, limit=limit)

"""The server's JSON back into the operations' typed results.

The API returns each result's ``as_json``; these functions rebuild the same
objects, so the CLI renders a remote result with the very renderer (and
``--json`` prints the very JSON) of a local one. Each is the inverse of one
``as_json``; a field the renderers never read (a plan action's host model)
is left out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from corral.backends.base import TemplateCopy
from corral.images.registry import Template
from corral.lang.key_edit import KeyChange
from corral.model import Host, Project, Switch
from corral.ops.access import ProjectShares
from corral.ops.fleet import FleetResult, VmDone
from corral.ops.hosts import HostFacts, HostReport
from corral.ops.inventory import Inventory, InventoryHost
from corral.ops.projects import ProjectSummary
from corral.ops.reach import SshTarget
from corral.ops.results import (
    ActionResult,
    Applied,
    ApplyResult,
    ChangeResult,
    Failed,
    HostReadiness,
    HostStopped,
    MigrateResult,
    RemovalPreview,
    Removed,
    RemoveResult,
    StopResult,
    VmBatchResult,
    VmResult,
)
from corral.ops.status import DiskRow, ServiceHostRow, StatusReport, StatusRow
from corral.ops.templates import TemplateCopies, TemplateListing
from corral.ops.tokens import NewToken
from corral.ops.users import FIRST_TOKEN, NewUser
from corral.plan.actions import Action, ActionKind, Change, Plan
from corral.state.accounts import Quota, ShareRecord, TokenRecord, UserRecord, UserRemoval
from corral.state.audit import AuditEntry

Json = dict[str, Any]


def project(data: Json) -> Project:
    """``show --json`` (:meth:`Project.contract`) as the project model."""
    return Project(
        name=data["project"],
        hosts={name: Host.model_validate({**host, "name": name})
               for name, host in data["hosts"].items()},
        switches={name: Switch.model_validate({**switch, "name": name})
                  for name, switch in data["switches"].items()},
        groups={name: tuple(members) for name, members in data.get("groups", {}).items()},
    )


def plan(data: Json) -> Plan:
    """:func:`~corral.ops.results.plan_as_json` as a plan. An action's host model
    carries what the plan's JSON tells of it: its name and service host."""
    return Plan(data["project"], tuple(
        Action(ActionKind(a["kind"]), a["target"], reason=a["reason"], disk=a["disk"],
               host=(Host(name=a["target"], service_host=a["service_host"])
                     if a["service_host"] is not None else None),
               changes=tuple(Change(c["field"], c["old"], c["new"], c["live"])
                             for c in a["changes"]))
        for a in data["actions"]), tuple(data["notes"]))


def summary(data: Json) -> ProjectSummary:
    return ProjectSummary(**data)


def status(data: Json) -> StatusReport:
    rows = [StatusRow(**{**row, "disks": [DiskRow(**d) for d in row["disks"]]})
            for row in data["rows"]]
    hosts = [ServiceHostRow(**h) for h in data["service_hosts"]]
    silent = {h.name: h.error or "no answer" for h in hosts if h.state == "unknown"}
    return StatusReport(rows, silent, hosts)


def host_report(data: Json) -> HostReport:
    facts = HostFacts(**{k: data[k] for k in HostFacts.__dataclass_fields__ if k in data})
    seen = data.get("last_contact")
    return HostReport(data["name"], data["uri"], data["reachable"], data["error"],
                      datetime.fromisoformat(seen) if seen else None, facts)


def inventory(data: Json) -> Inventory:
    return Inventory(data["project"], tuple(data["switches"]), tuple(
        InventoryHost(SshTarget(**h["target"]), tuple(h["superclasses"]),
                      tuple(h["switches"]), h["memory_mib"], h["vcpus"])
        for h in data["hosts"]))


def template(data: Json) -> Template:
    return Template.model_validate(data)


def template_listing(data: Json) -> TemplateListing:
    """A row of ``GET /templates``: the template, and the projects using it."""
    fields = dict(data)
    used_by = tuple(fields.pop("used_by", ()))
    return TemplateListing(template(fields), used_by)


def template_copies(data: Json) -> TemplateCopies:
    return TemplateCopies(tuple(TemplateCopy(**c) for c in data["copies"]),
                          tuple(data["problems"]), dict(data["unreachable"]))


def failed(data: Json) -> Failed:
    return Failed(data["kind"], data["name"], data["service_host"], data["reason"])


def applied(data: Json) -> ApplyResult:
    """``up``/``build``/``upgrade``/``start`` (:meth:`ApplyResult.as_json`)."""
    return ApplyResult(
        operation=data["operation"], project=data["project"],
        plan=Plan(data["project"], (), tuple(data["notes"])),
        actions=tuple(ActionResult(
            a["kind"], a["target"], a["reason"],
            tuple(ChangeResult(c["field"], c["old"], c["new"], Applied(c["applied"]))
                  for c in a["changes"]), a["disk"]) for a in data["actions"]),
        started=tuple(data["started"]),
        readiness=tuple(HostReadiness(**r) for r in data["readiness"]),
        warnings=tuple(data["warnings"]),
        failed=tuple(failed(f) for f in data["failed"]),
    )


def stopped(data: Json) -> StopResult:
    return StopResult(data["project"], tuple(HostStopped(**h) for h in data["hosts"]),
                      tuple(data["warnings"]), tuple(failed(f) for f in data["failed"]))


def removal(data: Json) -> RemovalPreview:
    return RemovalPreview(data["project"], tuple(data["domains"]), tuple(data["networks"]),
                          tuple(data["volumes"]))


def removed(data: Json) -> RemoveResult:
    return RemoveResult(data["project"], tuple(Removed(**r) for r in data["removed"]),
                        tuple(data["warnings"]), tuple(failed(f) for f in data["failed"]))


def vm_result(data: Json) -> VmResult:
    action = str(data["operation"]).removeprefix("vm ")
    return VmResult(data["target"], action, data["outcome"], tuple(data["warnings"]))


def vm_batch(data: Json) -> VmBatchResult:
    return VmBatchResult(str(data["operation"]).removeprefix("vm "),
                         tuple(vm_result(d) for d in data["done"]),
                         tuple(failed(f) for f in data["failed"]), tuple(data["warnings"]))


def migrated(data: Json) -> MigrateResult:
    fields = {k: v for k, v in data.items() if k != "operation"}
    return MigrateResult(**{**fields, "warnings": tuple(data["warnings"])})


def fleet(data: Json) -> FleetResult:
    return FleetResult(str(data["operation"]).removesuffix(" --all"),
                       tuple(VmDone(**d) for d in data["done"]), dict(data["failed"]))


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def user(data: Json) -> UserRecord:
    """:func:`~corral.ops.users.user_json` as the user's record."""
    return UserRecord(data["name"], data["admin"], datetime.fromisoformat(data["created_at"]),
                      Quota(**data["quota"]), data["has_password"])


def new_user(data: Json) -> NewUser:
    """A user just added with their first token. The answer tells the token's id
    and secret; the rest of its record is what ``add_user`` gives every first
    token (its label, full scope, made with the user)."""
    added = user(data)
    record = TokenRecord(data["token_id"], added.name, FIRST_TOKEN, "full", added.created_at,
                         None, None)
    return NewUser(added, NewToken(record, data["token"]))


def token(data: Json) -> TokenRecord:
    """:func:`~corral.ops.tokens.token_json` as the token's record."""
    return TokenRecord(data["id"], data["user"], data["name"], data["scope"],
                       datetime.fromisoformat(data["created_at"]), _moment(data["last_used_at"]),
                       _moment(data["revoked_at"]))


def new_token(data: Json) -> NewToken:
    return NewToken(token(data), data["token"])


def user_removal(data: Json) -> UserRemoval:
    return UserRemoval(data["user"], data["tokens"], data["shares"], tuple(data["projects"]))


def share(data: Json) -> ShareRecord:
    return ShareRecord(data["project"], data["user"], data["access"],
                       datetime.fromisoformat(data["since"]))


def shares(data: Json) -> ProjectShares:
    return ProjectShares(data["project"], data["owner"], tuple(
        share({**s, "project": data["project"]}) for s in data["shares"]))


def audit_entry(data: Json) -> AuditEntry:
    return AuditEntry(**{**data, "at": datetime.fromisoformat(data["at"])})


def key_change(data: Json) -> KeyChange:
    return KeyChange(data["file"], data["line"], data["path"], data["action"], data["old"],
                     data["new"])

"""Per-VM operations on ``PROJECT.HOST``: the ``corral vm`` verbs.

One VM's verb answers when done; several VMs at once and a migration run as
jobs. Each is authorised on the VM's project for the verb's access
(``vm.reboot`` needs write, ``vm.log`` read) before anything is looked up.

``PROJECT.@GROUP`` names every member of a group of the project: the batch
jobs take it among their targets, and a verb's own route given one answers
with the batch result (``done``, ``failed``, ``partial``) once every member
is done. The members are found by the operations layer (corral.ops.groups),
as for the CLI on the service machine.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, PlainTextResponse

from corral.ops import vms
from corral.ops.access import authorize_action
from corral.ops.groups import group_of
from corral.ops.migrate import vm_migrate
from corral.server import models
from corral.server.context import Call, Caller
from corral.server.jobs import Work

router = APIRouter(tags=["vms"])
Target = Annotated[str, Path(max_length=401, description="PROJECT.HOST, e.g. lab.web, or "
                            "PROJECT.@GROUP: every member of the group")]
Verb = Literal["reboot", "destroy", "pause", "resume", "suspend", "restore"]


def _project(target: str) -> str:
    group = group_of(target)
    return group[0] if group is not None else vms.parse_target(target)[0]


def _batch_job(call: Call, action: str, targets: list[str],
               run: Work) -> JSONResponse:
    """Authorise ``action`` on every project the targets name, then run it as a job."""
    for project in sorted({_project(t) for t in targets}):
        call.authorize(project, f"vm.{action}")
    return call.job(f"vm.{action}", " ".join(targets)[:2000], run)


# The batch routes come first: /vms/batch/shutdown is not the VM 'batch'.
@router.post("/vms/batch/memory", status_code=202, responses=models.JOB,
             summary="Job: set the memory of several VMs in parallel, each failing alone")
def batch_memory(call: Caller, body: models.VmBatchMemory) -> JSONResponse:
    return _batch_job(call, "mem-set", body.targets,
                      lambda s: vms.vm_set_memory_each(s, body.targets, body.memory))


@router.post("/vms/batch/vcpus", status_code=202, responses=models.JOB,
             summary="Job: set the vCPUs of several VMs in parallel, each failing alone")
def batch_vcpus(call: Caller, body: models.VmBatchVcpus) -> JSONResponse:
    return _batch_job(call, "vcpu-set", body.targets,
                      lambda s: vms.vm_set_vcpus_each(s, body.targets, body.count))


@router.post("/vms/batch/{action}", status_code=202, responses=models.JOB,
             summary="Job: one verb on several VMs in parallel, each failing alone")
def batch(call: Caller, action: Literal[Verb, "shutdown"], body: models.VmBatch) -> JSONResponse:
    return _batch_job(call, action, body.targets, lambda s: vms.vm_action_each(
        s, body.targets, action, timeout_s=body.timeout_s))


@router.post("/vms/{target}/shutdown", summary="ACPI shutdown, forced after the timeout")
def shutdown(call: Caller, target: Target, body: models.VmShutdown) -> dict[str, Any]:
    with call.audited("vm.shutdown", target):
        authorize_action(call.session, call.identity, _project(target), "vm.shutdown")
        if group_of(target) is not None:
            return vms.vm_action_each(call.session, [target], "shutdown",
                                      timeout_s=body.timeout_s).as_json()
        return vms.vm_shutdown(call.session, target, body.timeout_s).as_json()


@router.post("/vms/{target}/memory", summary="Set the guest's current memory")
def mem_set(call: Caller, target: Target, body: models.VmMemory) -> dict[str, Any]:
    with call.audited("vm.mem-set", target):
        authorize_action(call.session, call.identity, _project(target), "vm.mem-set")
        if group_of(target) is not None:
            return vms.vm_set_memory_each(call.session, [target], body.memory).as_json()
        return vms.vm_set_memory(call.session, target, body.memory).as_json()


@router.post("/vms/{target}/vcpus", summary="Set the guest's number of vCPUs")
def vcpu_set(call: Caller, target: Target, body: models.VmVcpus) -> dict[str, Any]:
    with call.audited("vm.vcpu-set", target):
        authorize_action(call.session, call.identity, _project(target), "vm.vcpu-set")
        if group_of(target) is not None:
            return vms.vm_set_vcpus_each(call.session, [target], body.count).as_json()
        return vms.vm_set_vcpus(call.session, target, body.count).as_json()


@router.get("/vms/{target}/xml", response_class=PlainTextResponse,
            summary="The domain's libvirt XML")
def describe(call: Caller, target: Target) -> str:
    call.authorize(_project(target), "vm.describe")
    return vms.vm_describe(call.session, target)


@router.get("/vms/{target}/log", response_class=PlainTextResponse,
            summary="The console output of the guest's current boot")
def log(call: Caller, target: Target) -> str:
    call.authorize(_project(target), "vm.log")
    return vms.vm_console_log(call.session, target)


@router.post("/vms/{target}/migrate", status_code=202, responses=models.JOB,
             summary="Job: move the VM to another service host")
def migrate(call: Caller, target: Target, body: models.VmMigrate) -> JSONResponse:
    call.authorize(_project(target), "vm.migrate")
    return call.job("vm.migrate", target, lambda s: vm_migrate(
        s, target, body.service_host, offline=body.offline, update_file=body.update_file,
        wait_lock=body.wait_lock, timeout_s=body.timeout_s))


@router.post("/vms/{target}/{action}", summary="reboot, destroy, pause, resume, suspend or "
             "restore one VM")
def act(call: Caller, target: Target, action: Verb) -> dict[str, Any]:
    with call.audited(f"vm.{action}", target):
        authorize_action(call.session, call.identity, _project(target), f"vm.{action}")
        if group_of(target) is not None:
            return vms.vm_action_each(call.session, [target], action).as_json()
        return vms.vm_action(call.session, target, action).as_json()

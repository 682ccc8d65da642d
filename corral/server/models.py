"""Request bodies: typed, strict (an unknown field is refused), with limits.

Responses are the operations' own JSON (``as_json`` of their typed results,
documented in docs/operations.md), returned as they are, so the CLI's
``--json`` and the API always agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from corral.ops.templates import DebianOptions

MAX_FILE = 2_000_000  # characters of a project file in a request
NAME = r"^[A-Za-z0-9_.-]{1,200}$"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProjectFile(Body):
    """A project file's text and the name its errors carry (``.yaml`` for YAML)."""

    text: str = Field(max_length=MAX_FILE)
    name: str = Field(default="project.corral", pattern=NAME)


class Apply(ProjectFile):
    recreate: bool = False
    wait_lock: bool = True


class Up(Apply):
    wait: bool = True


class Upgrade(Apply):
    prune: bool = False


Word = Annotated[str, Field(max_length=10_000)]
Words = Annotated[list[Word], Field(max_length=1000)]


class KeyEdit(Body):
    """``corral set``/``unset`` of the file the server keeps for a project: the PATH of
    the key and its value (words; one string is one word), or null to remove it."""

    path: str = Field(min_length=1, max_length=1000, examples=["host.web.memory"])
    value: Words | Word | None = Field(examples=[["256M"]])

    def words(self) -> list[str] | None:
        if isinstance(self.value, str):
            return [self.value]
        return self.value


class Start(Body):
    hosts: list[str] | None = Field(default=None, max_length=10_000)
    wait: bool = True


class Stop(Body):
    hosts: list[str] | None = Field(default=None, max_length=10_000)
    timeout_s: float = Field(default=60, ge=0, le=86_400)


class Remove(Body):
    wait_lock: bool = True


class Everything(Body):
    """``stop``/``suspend``/``start`` of every VM (``--all``)."""

    action: Literal["stop", "suspend", "start"]
    timeout_s: float = Field(default=60, ge=0, le=86_400)


class VmShutdown(Body):
    timeout_s: float = Field(default=60, ge=0, le=86_400)


class VmMemory(Body):
    memory: str = Field(max_length=40, examples=["256M"])


class VmVcpus(Body):
    count: int = Field(ge=1, le=4096)


class VmBatch(Body):
    targets: list[str] = Field(min_length=1, max_length=10_000)
    timeout_s: float = Field(default=60, ge=0, le=86_400)


class VmBatchMemory(Body):
    targets: list[str] = Field(min_length=1, max_length=10_000)
    memory: str = Field(max_length=40, examples=["256M"])


class VmBatchVcpus(Body):
    targets: list[str] = Field(min_length=1, max_length=10_000)
    count: int = Field(ge=1, le=4096)


class VmMigrate(Body):
    service_host: str = Field(pattern=NAME)
    offline: bool = False
    update_file: bool = True
    wait_lock: bool = True
    timeout_s: float = Field(default=60, ge=0, le=86_400)


class TemplateAdd(Body):
    """Files on the server's own machine (an administrator's request)."""

    name: str = Field(pattern=NAME)
    file: str | None = Field(default=None, max_length=4096)
    kernel: str | None = Field(default=None, max_length=4096)
    initrd: str | None = Field(default=None, max_length=4096)
    cmdline: str | None = Field(default=None, max_length=4096)
    disk_boots: bool = False


class TemplateBuild(Body):
    """``name`` is the builder (``tiny``, ``debian``); the rest are the debian
    builder's options (``corral template build``)."""

    name: str = Field(pattern=NAME)
    template: str | None = Field(default=None, pattern=NAME,
                                 description="Register it under this name.")
    release: str | None = Field(default=None, pattern=NAME)
    packages: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, max_length=500)
    size: str | None = Field(default=None, max_length=20)
    rootfs: bool = Field(default=False, description="A root filesystem for lxc hosts' "
                         "containers, not a VM's disk and kernel.")
    project: ProjectFile | None = Field(
        default=None, description="Build the template a host of this project names, "
        "with its packages (give host).")
    host: str | None = Field(default=None, pattern=NAME)

    def debian(self) -> DebianOptions | None:
        return DebianOptions.given(self.release, self.packages, self.size, self.rootfs)


class Limits(Body):
    """Quota limits: a number, or null for unlimited; a field not given stays."""

    max_vms: int | None = Field(default=None, ge=0)
    max_memory_mib: int | None = Field(default=None, ge=0)
    max_vcpus: int | None = Field(default=None, ge=0)


class UserAdd(Body):
    name: str = Field(max_length=64)
    admin: bool = False
    quota: Limits = Field(default_factory=Limits)


class Password(Body):
    password: str = Field(max_length=1024)


class TokenCreate(Body):
    user: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)
    metrics_only: bool = False


class Share(Body):
    access: Literal["read", "write"]


# ---------------------------------------------------------------- answers of the server's own
# Results of operations are their own JSON (docs/operations.md); these are what the server
# itself answers: errors, jobs and the caller's identity.


class Diagnostic(BaseModel):
    file: str
    line: int
    column: int
    message: str
    hint: str | None = None


class Error(BaseModel):
    """Every answer that is not a success."""

    error: str
    kind: str
    exit_code: int
    hint: str | None = None
    diagnostics: list[Diagnostic] | None = Field(
        default=None, description="An invalid project file's errors, each positioned.")


class JobEvent(BaseModel):
    seq: int
    at: datetime
    kind: Literal["note", "warning", "progress"]
    message: str
    data: dict[str, Any]


class Job(BaseModel):
    id: str
    operation: str
    target: str
    owner: str
    state: Literal["queued", "running", "done", "failed", "interrupted"]
    outcome: str | None = Field(description="ok, not_ready, partial, an error's outcome, "
                                            "or interrupted; null until the job ends")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None = Field(description="The operation's typed result")
    error: Error | None


class JobAccepted(Job):
    href: str


class JobWithEvents(Job):
    events: list[JobEvent]


class Caller(BaseModel):
    name: str
    admin: bool
    scope: Literal["full", "metrics"]
    source: str


class Validated(BaseModel):
    valid: bool
    name: str


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Error, "description": meaning} for status, meaning in (
        (400, "invalid request"), (401, "not authenticated"),
        (403, "not allowed, or the client is outside the allowed networks"),
        (404, "not found, or not the caller's to see"), (409, "refused: conflict, locked"),
        (502, "libvirt failure"),
    )
}

JOB: dict[int | str, dict[str, Any]] = {
    202: {"model": JobAccepted, "description": "accepted: the job, and where to read it"},
}

INVALID_FILE: dict[int | str, dict[str, Any]] = {
    422: {"model": Error, "description": "an invalid project file: every error, positioned"},
}

"""Request bodies: typed, strict (an unknown field is refused), with limits.

Responses are the operations' own JSON (``as_json`` of their typed results,
documented in docs/operations.md), returned as they are, so the CLI's
``--json`` and the API always agree.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
    name: str = Field(pattern=NAME)


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

"""The site configuration, ``corral.toml`` (MLN's ``mln.conf``).

What a site decides once for every project: defaults for hosts that do not say
(template, memory, size, hypervisor kind), where templates, the state database
and run copies live, which service hosts exist (libvirt URI and capacity), and
who may talk to the server. Example::

    [defaults]
    template = "tiny"
    memory = "128M"
    virt_type = "auto"          # auto | kvm | qemu: domain type for kvm hosts
    placement = "spread"        # spread | pack: hosts the file does not place

    [paths]
    templates = "/var/lib/corral/templates"

    [service_hosts.milano]
    uri = "qemu+ssh://milano/system"
    migration_address = "10.0.0.12"   # where other hosts' QEMU send a migrating guest
    max_vcpus = 16
    max_memory = "32G"
    max_vms = 40

    [state]
    url = "postgresql+psycopg://corral@db/corral"   # default: the SQLite file paths.state

    [server]
    listen = "0.0.0.0:8080"
    allowed_networks = ["10.0.0.0/8"]

Lookup order: an explicit ``--config``, ``$CORRAL_CONFIG``,
``/etc/corral/corral.toml``, ``~/.config/corral/corral.toml``; with none, the
built-in defaults, which run everything on the local machine (service host
``local`` = ``qemu:///system``). Hosts the project file does not place go
to ``[defaults] service_host`` or are scheduled over the service hosts
(docs/placement.md). An unknown key is a :class:`ConfigError`
naming the file and the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from corral.errors import ConfigError
from corral.model import values
from corral.model.project import Virt

LOCAL_SERVICE_HOST = "local"
LOCAL_URI = "qemu:///system"
ENV_VAR = "CORRAL_CONFIG"
SEARCH_PATHS: tuple[Path, ...] = (
    Path("/etc/corral/corral.toml"),
    Path("~/.config/corral/corral.toml"),
)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _mib(value: Any) -> Any:
    """Sizes may be written ``"128M"`` or as a number of MiB."""
    return values.size_mib(value) if isinstance(value, str) else value


class Defaults(_Section):
    """Values for hosts that do not set them."""

    template: str | None = None
    memory: int = Field(default=128, ge=1)  # MiB; MLN said 64, too small for a modern kernel
    size: int | None = Field(default=None, ge=1)  # MiB; None = the template's own size
    virt: Virt = Virt.KVM
    virt_type: Literal["auto", "kvm", "qemu"] = "auto"
    # Where hosts the file does not place go: None (the default) lets the
    # scheduler choose among the service hosts (docs/placement.md).
    service_host: str | None = None
    lvm_vg: str | None = None  # volume group for hosts that say `lvm` without `lvm_vg`
    # How the scheduler places hosts without `service_host`: spread (fewest
    # Corral VMs, then most unallocated memory) or pack (the first by name that fits).
    placement: Literal["spread", "pack"] = "spread"

    _sizes = field_validator("memory", "size", mode="before")(_mib)


class Paths(_Section):
    templates: Path = Path("/var/lib/corral/templates")
    state: Path = Path("/var/lib/corral/state.db")
    runs: Path = Path("/var/lib/corral/runs")


class ServiceHost(_Section):
    """A hypervisor machine reached through libvirt, and what it may carry."""

    uri: str
    max_vcpus: int | None = Field(default=None, ge=1)
    max_memory: int | None = Field(default=None, ge=1)  # MiB
    max_vms: int | None = Field(default=None, ge=1)
    # Directory on that machine where Corral keeps its uploaded copies of the
    # site's templates (a libvirt dir pool); None: the site's paths.templates.
    storage: str | None = None
    # Directory on that machine under which each project's pool keeps its run
    # copies, disks and seeds (PROJECT/ below it); None: the site's paths.runs.
    runs: str | None = Field(default=None, min_length=1, pattern=r"^/")
    # A bridge on that machine joined at layer 2 to the same bridge on the other
    # service hosts: switches whose VMs sit on several service hosts go through it
    # (corral.plan.spans); without one, such a switch is refused at plan time.
    site_bridge: str | None = None
    # At most this many guests booting at once there; None: chosen from its CPUs.
    boot_parallel: int | None = Field(default=None, ge=1)
    # Whether the scheduler may put hosts here that the file does not place; a
    # host whose file names this service host goes here either way.
    schedule: bool = True
    # Where the other service hosts' QEMU reach this one for migration data (an
    # address or a name they resolve); None: the name libvirt reports for it.
    migration_address: str | None = Field(
        default=None, min_length=1, pattern=r"^[A-Za-z0-9._:\[\]-]+$"
    )

    _sizes = field_validator("max_memory", mode="before")(_mib)

    @field_validator("site_bridge")
    @classmethod
    def _bridge_name(cls, name: str | None) -> str | None:
        """A Linux interface name, as libvirt's network schema and the kernel take it."""
        if name is not None and not _INTERFACE_NAME.fullmatch(name):
            raise ValueError(
                f"'{name}' is not a bridge name (1-15 of A-Z a-z 0-9 _ . -, as Linux names links)"
            )
        return name


_INTERFACE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")


class State(_Section):
    """Where the state database lives when it is not the SQLite file ``paths.state``."""

    # A SQLAlchemy URL (sqlite or postgresql dialect); None: paths.state.
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        from corral.state.db import database_url  # SQLAlchemy loads only when a URL is set

        database_url(url)
        return url


class Server(_Section):
    """Where the REST server listens and which client networks it accepts."""

    listen: str = "127.0.0.1:8080"
    allowed_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, networks: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(ipaddress.ip_network(n, strict=False)) for n in networks)


def _default_service_hosts() -> dict[str, ServiceHost]:
    return {LOCAL_SERVICE_HOST: ServiceHost(uri=LOCAL_URI)}


class SiteConfig(_Section):
    """Everything a site decides for all projects; built-in defaults run locally."""

    defaults: Defaults = Field(default_factory=Defaults)
    paths: Paths = Field(default_factory=Paths)
    service_hosts: dict[str, ServiceHost] = Field(default_factory=_default_service_hosts)
    state: State = Field(default_factory=State)
    server: Server = Field(default_factory=Server)
    source: Path | None = None  # the file it was read from, None for built-in defaults

    @field_validator("service_hosts")
    @classmethod
    def _keep_local(cls, hosts: dict[str, ServiceHost]) -> dict[str, ServiceHost]:
        """``local`` always exists; when the site lists other service hosts but not
        ``local``, the scheduler does not use it (the site chose its hypervisors)."""
        for name in hosts:
            values.name(name)
        local = _default_service_hosts()
        if hosts and LOCAL_SERVICE_HOST not in hosts:
            local[LOCAL_SERVICE_HOST] = ServiceHost(uri=LOCAL_URI, schedule=False)
        return {**local, **hosts}

    @model_validator(mode="after")
    def _default_host_exists(self) -> SiteConfig:
        wanted = self.defaults.service_host
        if wanted is not None and wanted not in self.service_hosts:
            raise ValueError(
                f"defaults.service_host '{wanted}' is not a [service_hosts.NAME] table"
            )
        return self

    @model_validator(mode="after")
    def _one_state_database(self) -> SiteConfig:
        if self.state.url is not None and "state" in self.paths.model_fields_set:
            raise ValueError(
                "paths.state and state.url both name the state database: keep one of them"
            )
        return self

    def state_location(self) -> Path | str:
        """The state database: the SQLite file ``paths.state`` (a path), or the
        SQLAlchemy URL of ``[state] url`` (a string)."""
        return self.state.url if self.state.url is not None else self.paths.state

    def service_host(self, name: str) -> ServiceHost | None:
        return self.service_hosts.get(name)

    def runs_of(self, service_host: str) -> Path:
        """Where ``service_host`` keeps the projects' run copies, disks and seeds: its
        own ``runs`` directory, else the site's ``paths.runs``."""
        config = self.service_hosts.get(service_host)
        return Path(config.runs) if config is not None and config.runs else self.paths.runs

    def schedulable(self) -> list[str]:
        """The service hosts the scheduler may choose, in name order."""
        return sorted(n for n, h in self.service_hosts.items() if h.schedule)

    def preset_service_host(self) -> str | None:
        """Where a host the file does not place goes without asking any service
        host: the site's ``[defaults] service_host``, else the only service host
        the scheduler may use; None when the scheduler has to choose."""
        if self.defaults.service_host is not None:
            return self.defaults.service_host
        candidates = self.schedulable()
        return candidates[0] if len(candidates) == 1 else None

    def fallback_service_host(self) -> str:
        """Where something that no host pins goes (a switch no host uses, ``corral
        info`` without ``-s``): the site's default, else the first service host
        the scheduler may use, else ``local``."""
        return self.preset_service_host() or next(iter(self.schedulable()), LOCAL_SERVICE_HOST)


def find_site_config(
    explicit: Path | None,
    environ: Mapping[str, str] | None = None,
    search: Sequence[Path] = SEARCH_PATHS,
) -> Path | None:
    """The file to read: explicit, then ``$CORRAL_CONFIG``, then the first that exists."""
    environ = os.environ if environ is None else environ
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"{explicit}: site config file not found")
        return explicit
    from_env = environ.get(ENV_VAR)
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"{path}: site config file not found (from ${ENV_VAR})")
        return path
    for candidate in search:
        path = candidate.expanduser()
        if path.is_file():
            return path
    return None


def load_site_config(
    explicit: Path | None = None,
    environ: Mapping[str, str] | None = None,
    search: Sequence[Path] = SEARCH_PATHS,
) -> SiteConfig:
    """Read the site config found by :func:`find_site_config`, or built-in defaults."""
    path = find_site_config(explicit, environ, search)
    if path is None:
        return SiteConfig()
    return parse_site_config(path.read_bytes().decode("utf-8", errors="replace"), path)


def parse_site_config(text: str, path: Path) -> SiteConfig:
    """Validate TOML ``text``; every problem becomes a :class:`ConfigError` naming ``path``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    if "source" in data:
        raise ConfigError(f"{path}: unknown key 'source'")
    try:
        return SiteConfig.model_validate({**data, "source": path})
    except ValidationError as error:
        raise _config_error(path, error) from None


_SECTIONS: dict[str, type[BaseModel]] = {
    "": SiteConfig,
    "defaults": Defaults,
    "paths": Paths,
    "server": Server,
    "service_hosts": ServiceHost,
    "state": State,
}


def _config_error(path: Path, error: ValidationError) -> ConfigError:
    problems = [_describe(detail) for detail in error.errors()]
    message = f"{path}: " + f"\n{path}: ".join(text for text, _ in problems)
    return ConfigError(message, hint=problems[0][1])


def _describe(detail: Any) -> tuple[str, str | None]:
    location = [str(part) for part in detail["loc"]]
    dotted = ".".join(location)
    if detail["type"] == "extra_forbidden":
        section = location[0] if len(location) > 1 else ""
        model = _SECTIONS.get(section, SiteConfig)
        known = [n for n in model.model_fields if n != "source"]
        from corral.lang.resolve import did_you_mean  # the language loads only when needed

        return f"unknown key '{dotted}'", did_you_mean(location[-1], known)
    message = detail["msg"].removeprefix("Value error, ")
    return (f"{dotted}: {message}" if dotted else message), None

"""The manifest of a project archive (``corral export``), and reading files by checksum.

An archive is a directory ``PROJECT/`` (or the same tree packed as
``PROJECT.tar.gz`` with ``-z``) holding ``manifest.json`` and the files it
lists, each with its sha256 and size, at paths relative to the archive's
root. Import refuses a manifest of another format version, a file that is
missing, and a file whose sha256 differs (naming the file), before it changes
anything. The manifest is written last, so a directory without one is an
export that did not finish.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from corral.errors import ConfigError, ConflictError, NotFoundError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNK = 4 * 1024 * 1024


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ArchivedFile(_Frozen):
    """One file of the archive: where it is inside it, its sha256 and size in bytes."""

    path: str
    sha256: str
    size: int


class ArchivedVolume(_Frozen):
    """A volume of a host as it was exported.

    ``kind``: ``disk`` (the run copy), ``data`` (an extra disk, ``disk`` names
    it) or ``seed``. ``template`` names the template an overlay (``flattened``
    false) is based on; a flattened run copy stands alone. ``capacity`` is the
    size the guest sees, in bytes.
    """

    kind: Literal["disk", "data", "seed"]
    file: ArchivedFile
    format: str
    capacity: int | None = None
    disk: str | None = None
    template: str | None = None
    flattened: bool = False


class ArchivedHost(_Frozen):
    """One host: its domain's XML as libvirt held it (for the record and the
    standalone archive; import defines domains from the model), its volumes,
    where it ran and in what state."""

    name: str
    service_host: str
    state: str
    domain_xml: ArchivedFile
    volumes: tuple[ArchivedVolume, ...]
    paused_s: float | None = None  # how long it was paused for the copy, if it ran
    standalone_xml: ArchivedFile | None = None  # a single-VM archive's domain, for virsh


class ArchivedTemplate(_Frozen):
    """What a host's template was, and those of its files that are in the archive.

    ``sha256`` is the registry's record of every file of the template (also
    those not archived: a flattened archive holds no template disk), so an
    import compares a template of the same name with it. ``files`` maps a
    registry file name (``disk.qcow2``, ``vmlinuz``, ``initrd.img``) to its
    copy in the archive.
    """

    name: str
    kind: Literal["disk", "direct"]
    format: str | None = None
    virtual_size: int | None = None
    cmdline: str | None = None
    disk_boots: bool = False
    # What a builder put in it (the registry's record): an import registers it
    # again with them, and seeds leave the packages it holds to it.
    os: str | None = None
    release: str | None = None
    packages: tuple[str, ...] = ()
    disk_file: str | None = None  # the registry's name of the disk file
    kernel_file: str | None = None
    initrd_file: str | None = None
    sha256: dict[str, str]
    files: dict[str, ArchivedFile] = Field(default_factory=dict)


class ProjectFiles(_Frozen):
    """The project file and its includes, by path relative to the main file's
    directory; ``main`` is the main file's name."""

    main: str
    files: dict[str, ArchivedFile]


class Manifest(_Frozen):
    """Everything an import needs to recreate the project, and nothing it must trust
    without checking: every file has its checksum."""

    format_version: int
    project: str
    corral_version: str
    created_at: str
    flattened: bool
    consistency: str  # how running hosts were kept consistent: "paused" / "stopped"
    project_files: ProjectFiles
    model: dict[str, Any]
    hosts: dict[str, ArchivedHost]
    templates: dict[str, ArchivedTemplate]
    standalone_host: str | None = None  # set: a single VM's archive, not for import

    def all_files(self) -> Iterator[ArchivedFile]:
        """Every file the archive must hold."""
        yield from self.project_files.files.values()
        for host in self.hosts.values():
            yield host.domain_xml
            if host.standalone_xml is not None:
                yield host.standalone_xml
            for volume in host.volumes:
                yield volume.file
        for template in self.templates.values():
            yield from template.files.values()


def write_manifest(root: Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` into ``root`` (last, so its presence marks a whole archive)."""
    path = root / MANIFEST
    temporary = root / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n")
    temporary.replace(path)
    return path


def read_manifest(root: Path) -> Manifest:
    """The archive's manifest; a missing, unreadable or foreign one is a clear error."""
    path = root / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFoundError(f"{path}: not found; {root} is no complete archive",
                            hint="an export that did not finish writes no manifest") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: cannot be read: {error}") from None
    version = data.get("format_version") if isinstance(data, dict) else None
    if version != FORMAT_VERSION:
        raise ConfigError(f"{path}: archive format version {version!r}; this Corral reads "
                          f"version {FORMAT_VERSION}")
    try:
        return Manifest.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None


def inside(root: Path, relative: str) -> Path:
    """The archive file ``relative`` under ``root``; a path that leaves the archive
    (absolute, or through ``..``) is refused."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise ConfigError(f"{root / MANIFEST}: file path {relative!r} leaves the archive")
    return root.joinpath(*pure.parts)


def sha256_file(path: Path, also: Callable[[bytes], object] | None = None) -> str:
    """The sha256 of the file at ``path``, read in chunks (each also given to ``also``)."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(CHUNK), b""):
            digest.update(chunk)
            if also is not None:
                also(chunk)
    return digest.hexdigest()


def verify_file(root: Path, entry: ArchivedFile) -> Path:
    """The archive's file for ``entry``, after its size and sha256 matched the manifest."""
    path = inside(root, entry.path)
    try:
        size = path.stat().st_size
    except OSError:
        raise NotFoundError(f"archive file {path} is missing") from None
    if size != entry.size:
        raise ConflictError(f"archive file {path} has {size} bytes, not {entry.size} as the "
                            "manifest records: it was changed or cut short")
    found = sha256_file(path)
    if found != entry.sha256:
        raise ConflictError(f"archive file {path}: sha256 {found} differs from the manifest's "
                            f"{entry.sha256}: it was changed or damaged")
    return path


def archived(root: Path, path: Path, sha256: str | None = None) -> ArchivedFile:
    """The manifest entry of ``path`` (a file under ``root``), hashing it unless
    ``sha256`` was computed while it was written."""
    return ArchivedFile(path=path.relative_to(root).as_posix(),
                        sha256=sha256 or sha256_file(path), size=path.stat().st_size)

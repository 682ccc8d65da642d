"""Where the serial console logs, and reading the log through libvirt's storage API."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from corral.backends.base import BootSpec, DomainSpec
from corral.backends.libvirt import console, lifecycle
from corral.errors import BackendError
from corral.images.registry import Template
from corral.model import Host


@pytest.fixture
def base(scratch: Path) -> Template:
    path = scratch / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "32M"], check=True)
    path.chmod(0o444)
    return Template(
        name="base", kind="disk", directory=scratch, disk=path, format="qcow2",
        virtual_size=32 * 1024**2, sha256={}, added_at=datetime.now(UTC),
    )


def test_the_log_is_beside_the_seed_in_the_projects_pool() -> None:
    runs = "/srv/runs"
    assert console.log_path(runs, "lab", Host(name="web")) == "/srv/runs/lab/web-console.log"
    shared = Host(name="web", filepath="/mnt/shared")
    assert console.log_path(runs, "lab", shared) == "/mnt/shared/lab/web-console.log"
    # On LVM the seed stays in the project's own pool, and so does the log.
    lvm = Host(name="db", lvm=True, lvm_vg="vg0", filepath="/mnt/shared")
    assert console.log_path(runs, "lab", lvm) == "/srv/runs/lab/db-console.log"


def _define(real, project: str, base) -> str:
    host = Host(name="c", memory_mib=32)
    disk = real.create_run_copy(project, "c", base, None)
    return real.define_domain(DomainSpec(
        project=project, host=host, virt_type=real.resolve_virt_type("auto"),
        boot=BootSpec.from_template(base), disk_path=disk, seed_path=None, nics=(),
        model_hash=host.model_hash(),
    ))


@pytest.mark.libvirt
def test_a_log_new_to_its_pool_is_read_through_a_download_stream(real, project, base) -> None:
    name = _define(real, project, base)
    domain = lifecycle.lookup(real.conn, name)
    # Never started: nothing logged yet, read the remote way or the local way.
    assert console.console_output(real.conn, domain, local=False) == ""
    assert real.console_output(name) == ""
    # A file the pool did not create (as virtlogd writes it), longer than one chunk.
    text = "boot\n" + "x" * (console.CHUNK + 10) + "\ncorral-ready c\n"
    log = Path(real.runs_dir, project, "c-console.log")
    log.write_text(text)
    log.chmod(0o600)
    assert console.console_output(real.conn, domain, local=False) == text
    log.write_text(text + "more\n")  # grown since the pool last looked
    assert console.console_output(real.conn, domain, local=False).endswith("more\n")
    assert real.console_output(name).endswith("more\n")
    # Removing the host's volumes takes its console log along.
    real.undefine(name)
    real.delete_volumes(project, "c")
    assert not log.exists()


@pytest.mark.libvirt
def test_a_log_outside_every_pool_is_named(real, project, base, scratch) -> None:
    name = _define(real, project, base)
    xml = real.describe(name).replace(
        str(Path(real.runs_dir, project, "c-console.log")), str(scratch / "elsewhere.log")
    )
    real.conn.defineXML(xml)
    domain = lifecycle.lookup(real.conn, name)
    with pytest.raises(BackendError, match="outside every storage pool"):
        console.console_output(real.conn, domain, local=False)

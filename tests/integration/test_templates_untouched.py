"""Starting, stopping and removing guests leaves their template exactly as it was.

libvirt's DAC driver chowns every file a guest uses to the QEMU user while it
runs (and records the old owner in ``trusted.libvirt.security.*`` xattrs).
Corral marks a run copy's backing file ``relabel='no'`` and boots a direct-boot
template's kernel and initrd from copies in the project's pool, so the
template's files keep owner, group, mode, xattrs, change time and bytes at
every step: checked after ``up`` (guest running), ``stop``, ``start`` and
``remove``.
"""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest
from lxml import etree

from corral.ops import projects

from .support import (
    URI,
    Site,
    changed_facts,
    node_superclass,
    project_name,
    remove_project,
    template_facts,
    write_project,
)

pytestmark = pytest.mark.libvirt


def project_text(name: str, subnet: int) -> str:
    return f"""\
global {{
    project {name}
}}
{node_superclass("96M")}
switch lan {{
    address 10.240.{subnet}.1/24
}}
host keep {{
    superclass node
    network eth0 {{
        switch lan
        address dhcp
    }}
}}
"""


def domain_files(domain: str) -> dict[str, str]:
    """Kernel, initrd and disk backing file the running domain uses, from its live XML."""
    conn = libvirt.open(URI)
    try:
        root = etree.fromstring(conn.lookupByName(domain).XMLDesc(0).encode())
    finally:
        conn.close()
    return {
        "kernel": root.findtext("os/kernel") or "",
        "initrd": root.findtext("os/initrd") or "",
        "backing": root.find("devices/disk/backingStore/source").get("file"),
    }


def test_template_files_are_never_touched(site: Site, tiny, subnets, tmp_path: Path) -> None:
    template = tiny.template
    directory = Path(template.directory)
    before = template_facts(directory)
    name = project_name()
    path = write_project(tmp_path / "keep.corral", project_text(name, subnets()))

    def assert_untouched(step: str) -> None:
        touched = changed_facts(before, template_facts(directory))
        assert not touched, f"template changed after {step}: {touched}"

    try:
        with site.session() as session:
            result = projects.up(session, path)
            assert result.ok, [(o.domain, o.reason) for o in result.readiness]
            used = domain_files(f"{name}-keep")
            assert used["backing"] == str(template.disk)
            for role in ("kernel", "initrd"):
                assert not used[role].startswith(str(directory)), used
                assert Path(used[role]).name.startswith("boot-"), used
            assert Path(used["kernel"]).read_bytes() == Path(template.kernel).read_bytes()
            assert_untouched("up (guest running)")

            projects.stop(session, name, timeout_s=30)
            assert_untouched("stop")

            started = projects.start(session, name).readiness
            assert all(o.ready for o in started), [(o.domain, o.reason) for o in started]
            assert_untouched("start")

            projects.remove(session, name)
            assert_untouched("remove")
    finally:
        remove_project(site, name)
    assert_untouched("the test")

"""An operations session on libvirt's in-process test driver.

The session is real end to end (site config, template registry on a real
qcow2 made by qemu-img, SQLite store, the libvirt backend) except that the
service host ``local`` is ``test:///default``, so nothing boots. One session
keeps one connection, so state lasts for the whole test.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from corral.config import SiteConfig, parse_site_config
from corral.ops.session import Session

SITE = """
[defaults]
template = "base"
virt_type = "qemu"

[paths]
templates = "{root}/templates"
state = "{root}/state.db"
runs = "{root}/runs"

[service_hosts.local]
uri = "test:///default"
"""

LAB = """
global {{
    project lab
}}
superclass node {{
    template base
    qemu
    memory {memory}
    maxmem 256M
    wait none
}}
switch front {{ address 10.9.1.1/24 }}
switch back {{ }}
host web {{
    superclass node
    network eth0 {{
        switch front
        address dhcp
    }}
}}
host app {{
    superclass node
    network eth0 {{
        switch front
        address 10.9.1.20
        netmask 255.255.255.0
    }}
    network eth1 {{ switch back }}
}}
{extra}
"""


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    """The test site: templates, state database and runs under tmp_path, test driver."""
    config = tmp_path / "corral.toml"
    config.write_text(SITE.format(root=tmp_path))
    return parse_site_config(config.read_text(), config)


@pytest.fixture
def session(site: SiteConfig, tmp_path: Path) -> Session:
    session = Session(site)
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
    session.registry.add("base", base)
    yield session
    session.close()


@pytest.fixture
def lab_file(tmp_path: Path):
    """Write the lab project with a given memory and extra text; returns the path."""

    def write(memory: str = "128M", extra: str = "") -> Path:
        path = tmp_path / "lab.corral"
        path.write_text(LAB.format(memory=memory, extra=extra))
        return path

    return write

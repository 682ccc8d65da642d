"""A Debian template built from Debian packages, booted under TCG, configured by
its own cloud-init from Corral's seed, and reached over SSH.

The tiny template runs Corral's own guest init; this proves that a real
distribution's cloud-init applies what Corral writes: the hostname, a key
login, a user with a password, runcmd lines with shell metacharacters, a
static address with its gateway, a data disk and the packages baked in at
build time, and that readiness is cloud-init's own final message.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.ops import projects
from corral.ops.source import ProjectSource
from corral.ops.templates import DebianOptions, build_template, list_templates

from .support import Site, project_name, remove_project, run_corral, write_project

pytestmark = pytest.mark.libvirt

TEMPLATE = "debian-it"


@pytest.fixture(scope="module")
def debian(site: Site) -> Iterator[str]:
    """The Debian template with htop baked in, built once for the module."""
    with site.session() as session:
        built = build_template(session, "debian", TEMPLATE,
                               DebianOptions(packages=("htop",), size="2G"))
    (site.root / "templates").chmod(0o755)
    assert (built.os, built.release, built.packages) == ("debian", "bookworm", ("htop",))
    yield TEMPLATE
    with site.session() as session:
        session.registry.remove(TEMPLATE)


def _ssh(site: Site, project: str, key: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``command`` on the guest, through the OpenSSH configuration ``corral
    ssh-config`` writes (its address, user and key); known hosts left untouched."""
    made = run_corral(site, "ssh-config", "-p", project, "-i", str(key))
    assert made.returncode == 0, made.stderr
    config = site.root / f"{project}.ssh-config"
    config.write_text(made.stdout)
    return subprocess.run(
        ["ssh", "-F", str(config), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
         "-o", "UserKnownHostsFile=/dev/null", f"{project}.deb", command],
        capture_output=True, text=True, timeout=120, check=False)


def test_a_debian_guest_is_configured_by_its_own_cloud_init(
        site: Site, debian: str, subnets: object, tmp_path: Path) -> None:
    octet = subnets()  # type: ignore[operator]
    name = project_name()
    key = site.root / f"{name}-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    address = f"10.240.{octet}.10"
    path = write_project(site.root / f"{name}.corral", f"""\
global {{
    project {name}
    sshkey {{
        root {key}.pub
    }}
}}
switch lan {{ address 10.240.{octet}.1/24 }}
host deb {{
    template {debian}
    qemu
    memory 512M
    vcpus 1
    wait console 900
    nameserver 10.240.{octet}.1
    users {{ alice Corral-s3cret }}
    disk data {{ size 64M }}
    network eth0 {{
        switch lan
        address {address}
        netmask 255.255.255.0
        gateway 10.240.{octet}.1
    }}
    runcmd {{
        echo "said: 'quoted'; $HOME *" > /root/said
        'V=expanded; echo "$V" >> /root/said'
    }}
}}
""")
    try:
        with site.session() as session:
            result = projects.up(session, ProjectSource.from_path(path))
            assert [(r.host, r.ready, r.reason) for r in result.readiness] == [
                ("deb", True, "corral-ready on the console")], result
            assert [row.used_by for row in list_templates(session)
                    if row.template.name == debian] == [(name,)]
        probe = _ssh(site, name, key, "hostname; cloud-init status; cat /root/said; "
                     "getent shadow alice | cut -d: -f2 | cut -c1-3; command -v htop; "
                     "ip -4 route show default; ls /dev/disk/by-id/")
        assert probe.returncode == 0, probe.stderr
        lines = probe.stdout.splitlines()
        assert lines[0] == "deb"
        assert lines[1] == "status: done"
        # A quoted word is one shell word, as it stands; a line quoted whole is
        # the shell's to read (docs/guest-configuration.md, the quoting rule).
        assert lines[2:4] == ["said: 'quoted'; $HOME *", "expanded"]
        assert lines[4] == "$6$" or lines[4].startswith("$y$")
        assert lines[5] == "/usr/bin/htop"
        assert lines[6].startswith(f"default via 10.240.{octet}.1 dev ")
        assert "virtio-data" in probe.stdout
    finally:
        remove_project(site, name)

"""A Debian template built from Debian packages for a project's host, booted
under TCG, configured by its own cloud-init from Corral's seed, and reached
over SSH.

The tiny template runs Corral's own guest init; this proves that a real
distribution's cloud-init applies what Corral writes: the hostname, keys from
the global and the host's ``sshkey`` blocks merged, a user with a password
that ``upgrade`` changes later (logging in with the new one works, the old
one no longer does), a file owned by that user, runcmd lines with shell
metacharacters, a static address with its gateway and name server on one NIC
and DHCP on another, a data disk, and the host's ``packages`` baked into the
template at build time (``--from-project``), so cloud-init never reaches
for a mirror. Readiness is cloud-init's own final message on the console.
``corral ssh-config`` and ``corral inventory`` are what reach it: OpenSSH
and Ansible each run something on the guest.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral.ops import projects
from corral.ops.source import ProjectSource
from corral.ops.templates import list_templates

from .support import Site, project_name, remove_project, run_corral, wait_for, write_project

# Building the template and two boots under TCG: minutes each on a loaded machine.
pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(2400)]

TEMPLATE = "debian-it"
PASSWORD = "Corral-s3cret"
NEW_PASSWORD = "Corral-n3w pass"


@dataclass(frozen=True)
class Lab:
    """The project the template is built for, and what reaching its guest takes."""

    name: str
    path: Path
    root_key: Path  # the global sshkey block's, for root
    alice_key: Path  # the host's sshkey block's, for alice
    static: str  # eth0's address
    octets: tuple[int, int]  # the static switch's and the DHCP switch's 10.240.X.0/24

    def text(self, password: str) -> str:
        static, dynamic = self.octets
        return f"""\
global {{
    project {self.name}
    sshkey {{
        root {self.root_key}.pub
    }}
    files {{
        /etc/motd "corral lab\\n"
    }}
}}
switch lan {{ address 10.240.{static}.1/24 }}
switch campus {{ address 10.240.{dynamic}.1/24 }}
host deb {{
    template {TEMPLATE}
    qemu
    memory 512M
    vcpus 1
    wait console 900
    nameserver 10.240.{static}.1
    packages htop
    users {{ alice "{password}" }}
    sshkey {{
        alice {self.alice_key}.pub
    }}
    files {{
        /home/alice/notes {{
            content "alice's notes"
            owner alice
            permissions 0600
        }}
    }}
    disk data {{ size 64M }}
    network eth0 {{
        switch lan
        address {self.static}
        netmask 255.255.255.0
        gateway 10.240.{static}.1
    }}
    network eth1 {{
        switch campus
        address dhcp
    }}
    runcmd {{
        echo "said: 'quoted'; $HOME *" > /root/said
        'V=expanded; echo "$V" >> /root/said'
    }}
}}
"""


def _key(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def lab(site: Site, subnets: object) -> Iterator[Lab]:
    """The project, with its template built for host ``deb`` by the CLI
    (``--from-project``: the host's template name and its packages)."""
    name = project_name()
    static, dynamic = subnets(), subnets()  # type: ignore[operator]
    made = Lab(name, site.root / f"{name}.corral", _key(site.root / f"{name}-root"),
               _key(site.root / f"{name}-alice"), f"10.240.{static}.10", (static, dynamic))
    write_project(made.path, made.text(PASSWORD))
    built = run_corral(site, "template", "build", "debian", "--from-project", str(made.path),
                       "--host", "deb", "--size", "2G", timeout=1200)
    assert built.returncode == 0, built.stderr
    assert f"template {TEMPLATE} built and registered" in built.stdout
    (site.root / "templates").chmod(0o755)
    yield made
    with site.session() as session:
        session.registry.remove(TEMPLATE)


def _ssh_config(site: Site, lab: Lab) -> Path:
    """The OpenSSH configuration ``corral ssh-config`` writes (address, user, key)."""
    made = run_corral(site, "ssh-config", "-p", lab.name, "-i", str(lab.root_key))
    assert made.returncode == 0, made.stderr
    config = site.root / f"{lab.name}.ssh-config"
    config.write_text(made.stdout)
    return config


def _ssh(site: Site, lab: Lab, command: str, *options: str,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``command`` on the guest through that configuration; known hosts left alone
    (each boot with a new instance id makes new host keys)."""
    return subprocess.run(
        ["ssh", "-F", str(_ssh_config(site, lab)), "-o", "ConnectTimeout=10",
         "-o", "UserKnownHostsFile=/dev/null", *options, f"{lab.name}.deb", command],
        capture_output=True, text=True, timeout=120, check=False, env=env,
        stdin=subprocess.DEVNULL)


def _password_login(site: Site, lab: Lab, password: str) -> subprocess.CompletedProcess[str]:
    """Log in as alice with ``password`` alone (no key), as a person at a prompt
    would: OpenSSH reads it from an askpass program."""
    askpass = site.root / f"{lab.name}-askpass"
    askpass.write_text(f"#!/bin/sh\nprintf '%s\\n' '{password}'\n")
    askpass.chmod(0o700)
    env = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force",
           "DISPLAY": ":0"}
    return _ssh(site, lab, "id -un", "-l", "alice", "-o", "PubkeyAuthentication=no",
                "-o", "PreferredAuthentications=password,keyboard-interactive",
                "-o", "NumberOfPasswordPrompts=1", env=env)


def _ansible_reaches_the_guest(site: Site, lab: Lab) -> None:
    """Ansible itself, given ``corral inventory``'s INI, runs a module on the guest
    (as root, by the key: Python on the guest answers)."""
    made = run_corral(site, "inventory", "-p", lab.name, "--format", "ini",
                      "-i", str(lab.root_key))
    assert made.returncode == 0, made.stderr
    inventory = site.root / f"{lab.name}.ini"
    inventory.write_text(made.stdout)
    env = {**os.environ, "ANSIBLE_LOCAL_TEMP": str(site.root / "ansible-tmp"),
           "ANSIBLE_SSH_EXTRA_ARGS": "-o UserKnownHostsFile=/dev/null",
           "ANSIBLE_PYTHON_INTERPRETER": "auto_silent", "ANSIBLE_NOCOLOR": "1"}
    pinged = subprocess.run(["ansible", "all", "-i", str(inventory), "-m", "ping", "-o"],
                            capture_output=True, text=True, timeout=300, env=env, check=False,
                            stdin=subprocess.DEVNULL)
    assert pinged.returncode == 0, pinged.stdout + pinged.stderr
    assert pinged.stdout.startswith("deb | SUCCESS"), pinged.stdout


def test_a_debian_guest_is_configured_by_its_own_cloud_init(site: Site, lab: Lab) -> None:
    try:
        with site.session() as session:
            result = projects.up(session, ProjectSource.from_path(lab.path))
            assert [(r.host, r.ready, r.reason) for r in result.readiness] == [
                ("deb", True, "corral-ready on the console")], result
            [listed] = [row for row in list_templates(session) if row.template.name == TEMPLATE]
            assert (listed.template.os, listed.template.packages, listed.used_by) == (
                "debian", ("htop",), (lab.name,))
        static, dynamic = lab.octets
        probe = _ssh(site, lab, "hostname; cloud-init status; cat /root/said; "
                     "getent shadow alice | cut -d: -f2 | cut -c1-3; command -v htop; "
                     "ip -4 route show default; ip -4 -o addr show dev eth1; "
                     "grep -c ^nameserver /etc/resolv.conf; grep ^nameserver /etc/resolv.conf; "
                     "stat -c '%U:%G %a' /home/alice/notes; cat /home/alice/notes; echo; "
                     "cat /etc/motd; ls /dev/disk/by-id/", "-o", "BatchMode=yes")
        assert probe.returncode == 0, probe.stderr
        lines = probe.stdout.splitlines()
        assert lines[0] == "deb"
        # Done, not error: the baked package was not asked of cloud-init again,
        # so it never reached for a mirror this network does not have.
        assert lines[1] == "status: done"
        # A quoted word is one shell word, as it stands; a line quoted whole is
        # the shell's to read (docs/guest-configuration.md, the quoting rule).
        assert lines[2:4] == ["said: 'quoted'; $HOME *", "expanded"]
        assert lines[4] == "$6$" or lines[4].startswith("$y$")
        assert lines[5] == "/usr/bin/htop"
        assert lines[6].startswith(f"default via 10.240.{static}.1 dev eth0")
        assert f"inet 10.240.{dynamic}." in lines[7], lines[7]  # leased by the switch
        assert f"nameserver 10.240.{static}.1" in lines[9:], lines
        owned = lines.index("alice:alice 600")
        assert lines[owned + 1] == "alice's notes"
        assert "corral lab" in lines[owned + 2:]
        assert "virtio-data" in probe.stdout

        # The host's sshkey block is merged with the global one: alice has her key.
        alice = _ssh(site, lab, "id -un", "-l", "alice", "-i", str(lab.alice_key),
                     "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes")
        assert (alice.returncode, alice.stdout) == (0, "alice\n"), alice.stderr
        assert _password_login(site, lab, PASSWORD).stdout == "alice\n"
        _ansible_reaches_the_guest(site, lab)

        # A new password by upgrade: a new seed, read at the guest's next boot.
        write_project(lab.path, lab.text(NEW_PASSWORD))
        with site.session() as session:
            changed = projects.upgrade(session, ProjectSource.from_path(lab.path))
            assert [(a.kind, a.target) for a in changed.actions] == [("update-host", "deb")]
            stopped = projects.stop(session, lab.name, timeout_s=300)
            assert [h.outcome for h in stopped.hosts] == ["clean"], stopped
            started = projects.start(session, lab.name)
            assert [(r.host, r.ready) for r in started.readiness] == [("deb", True)]
        wait_for(lambda: _password_login(site, lab, NEW_PASSWORD).stdout == "alice\n",
                 120, "alice's login with the new password")
        old = _password_login(site, lab, PASSWORD)
        assert old.returncode != 0 and "Permission denied" in old.stderr, old
    finally:
        remove_project(site, lab.name)

"""``corral export`` and ``corral import`` on the real libvirtd and fake service hosts.

One tiny guest runs on this machine (``local``) with an extra disk; a line is
written on its root disk and on its extra disk from its serial console, then:

* the running project is exported (the guest paused for the copy and resumed)
  and imported under a new name on fake service host h2, whose template store
  gets the template by upload: the imported guest boots there and reads both
  lines back, and ``plan`` of the file the import wrote is clean;
* a damaged archive is refused naming the file; importing over a project is
  refused without ``--replace``;
* another site (its own template registry and state database, no ``tiny``)
  imports a flattened ``-z`` archive with no template registered (the guest
  boots from its standalone disk and the archive's kernel) and an overlay
  archive whose template it registers;
* the host's standalone archive (``-h``) validates, and ``virsh define`` plus
  its files boot it without Corral under a name Corral does not manage.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from .fakehosts import FakeHosts
from .guest_console import GuestConsole
from .support import REPO, cli_env

pytestmark = pytest.mark.libvirt

ROOT_LINE = f"root-{secrets.token_hex(4)}"
DISK_LINE = f"disk-{secrets.token_hex(4)}"
PROJECT = """\
global {{ project {name} }}
#include "guest.corral"
host web {{
    superclass guest
    service_host local
    disk data {{ size 32M }}
    network eth0 {{ switch lan }}
}}
# no address: imports of the project beside it on one service host do not clash
switch lan {{ }}
"""
INCLUDED = "superclass guest {\n    template tiny\n}\n"


@dataclass(frozen=True)
class Origin:
    hosts: FakeHosts
    name: str
    archives: Path  # traversable by QEMU: the standalone archive boots from it

    def corral(self, *args: str, config: Path | None = None
               ) -> subprocess.CompletedProcess[str]:
        """The CLI on the harness's site, or on the site of ``config``."""
        if config is None:
            return self.hosts.corral(*args)
        env = {**cli_env(), "PYTHONPATH": str(REPO)}
        return subprocess.run(
            [sys.executable, "-m", "corral", "--config", str(config), *args],
            capture_output=True, text=True, timeout=300, env=env,
            stdin=subprocess.DEVNULL, check=False,
        )


def _lines(domain: str, uri: str) -> tuple[str, str]:
    """The line on the guest's root disk and the one at the start of its extra disk."""
    with GuestConsole(domain, uri) as console:
        root = console.run("cat /root/mark", timeout=120).strip()
        disk = console.run(f"head -c {len(DISK_LINE)} /dev/vdc; echo", timeout=60).strip()
    return root, disk


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def origin(three_hosts: FakeHosts) -> Iterator[Origin]:
    name = f"arc{secrets.token_hex(2)}"
    archives = three_hosts.state.parent / f"archives-{name}"
    archives.mkdir(mode=0o755)
    files = archives / "source"
    files.mkdir()
    (files / "lab.corral").write_text(PROJECT.format(name=name))
    (files / "guest.corral").write_text(INCLUDED)
    found = Origin(three_hosts, name, archives)
    try:
        _ok(found.corral("up", str(files / "lab.corral")))
        with GuestConsole(f"{name}-web") as console:
            console.run(f"echo {ROOT_LINE} > /root/mark; echo {DISK_LINE} > /dev/vdc; sync",
                        timeout=120)
        yield found
    finally:
        for project in [f"{name}2", f"{name}3", f"{name}4", name]:
            found.corral("remove", "-p", project, "--yes")
        other = archives / "elsewhere" / "corral.toml"
        if other.exists():
            for project in (f"{name}5", f"{name}6"):
                found.corral("remove", "-p", project, "--yes", config=other)
        shutil.rmtree(archives, ignore_errors=True)


def test_round_trip_to_another_service_host_keeps_the_guests_data(origin: Origin) -> None:
    out = origin.archives / "out"
    out.mkdir()
    exported = _ok(origin.corral("export", "-p", origin.name, "-d", str(out)))
    assert f"exported to {out / origin.name}" in exported
    assert "paused web for " in exported  # it ran: paused for the copy, then resumed
    assert _state(origin.hosts.uris["local"], f"{origin.name}-web") == "running"
    manifest = json.loads((out / origin.name / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["flattened"] is False
    assert set(manifest["project_files"]["files"]) == {"lab.corral", "guest.corral"}
    assert set(manifest["templates"]["tiny"]["files"]) == {"disk.qcow2", "vmlinuz", "initrd.img"}
    volumes = {v["kind"]: v for v in manifest["hosts"]["web"]["volumes"]}
    assert set(volumes) == {"disk", "data", "seed"}
    overlay = out / origin.name / volumes["disk"]["file"]["path"]
    checked = subprocess.run(["qemu-img", "check", str(overlay)], capture_output=True,
                             text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    new = f"{origin.name}2"
    imported = _ok(origin.corral("import", "-p", origin.name, "-d", str(out), "--as", new,
                                 "--service-host", "h2"))
    assert "template tiny: verified" in imported
    project_file = out / f"{new}.project" / "lab.corral"
    text = project_file.read_text()
    assert f"project {new}" in text and "service_host h2" in text
    assert (out / f"{new}.project" / "guest.corral").read_text() == INCLUDED
    planned = _ok(origin.corral("plan", str(project_file)))
    assert "nothing to change" in planned, planned
    _ok(origin.corral("start", "-p", new))
    assert _lines(f"{new}-web", origin.hosts.uris["h2"]) == (ROOT_LINE, DISK_LINE)
    assert "nothing to change" in _ok(origin.corral("plan", str(project_file)))

    again = origin.corral("import", "-p", origin.name, "-d", str(out), "--as", new,
                          "--service-host", "h2")
    assert again.returncode == 4 and f"{new}.project exists already" in again.stderr
    replaced = _ok(origin.corral("import", "-p", origin.name, "-d", str(out), "--as", new,
                                 "--service-host", "h2", "--replace"))
    assert f"project {new} imported" in replaced
    # read back from the fake service host (download streams over TLS), flattened here
    remote = origin.archives / "remote"
    remote.mkdir()
    _ok(origin.corral("export", "-p", new, "-d", str(remote), "--flatten"))
    flat = remote / new / "hosts" / "web" / "web.qcow2"
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(flat)],
                                     capture_output=True, text=True, check=True).stdout)
    assert "backing-filename" not in info
    assert ROOT_LINE.encode() in flat.read_bytes()  # the guest's line, in a standalone image
    assert DISK_LINE.encode() in (remote / new / "hosts" / "web" / "web.data.qcow2").read_bytes()
    # the running guest was removed with its project, and the import built it anew
    assert _state(origin.hosts.uris["h2"], f"{new}-web") == "shutoff"
    assert "nothing to change" in _ok(origin.corral("plan", str(project_file)))


def test_a_damaged_archive_is_refused_naming_the_file(origin: Origin) -> None:
    out = origin.archives / "out"
    damaged = origin.archives / "damaged"
    shutil.copytree(out / origin.name, damaged / origin.name)
    data = damaged / origin.name / "hosts" / "web" / "web.data.qcow2"
    with data.open("r+b") as file:
        file.seek(100)
        file.write(b"!")
    refused = origin.corral("import", "-p", origin.name, "-d", str(damaged), "--as",
                            f"{origin.name}3")
    assert refused.returncode == 4  # a conflict, before anything changed
    assert f"archive file {data}: sha256" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    listed = _ok(origin.corral("list", "--json"))
    assert f"{origin.name}3" not in listed  # nothing was made

    taken = origin.corral("import", "-p", origin.name, "-d", str(out))
    assert taken.returncode == 4
    assert f"project '{origin.name}' exists already" in taken.stderr, taken.stderr
    assert "--replace" in taken.stderr
    assert not (out / f"{origin.name}.project").exists()  # refused before writing


def test_another_site_imports_flattened_and_overlay_archives(origin: Origin) -> None:
    flat_out = origin.archives / "flat"
    flat_out.mkdir()
    exported = _ok(origin.corral("export", "-p", origin.name, "-d", str(flat_out), "-z",
                                 "--flatten"))
    archive = flat_out / f"{origin.name}.tar.gz"
    assert archive.is_file() and f"exported to {archive}" in exported
    elsewhere = origin.archives / "elsewhere"
    elsewhere.mkdir()
    config = elsewhere / "corral.toml"
    config.write_text(origin.hosts.toml.read_text()
                      .replace(str(origin.hosts.state / "site" / "templates"),
                               str(elsewhere / "templates"))
                      .replace(str(origin.hosts.state / "site" / "state.db"),
                               str(elsewhere / "state.db")))
    assert "tiny" not in _ok(origin.corral("template", "list", "--json", config=config))

    flat = f"{origin.name}5"
    imported = _ok(origin.corral("import", "-p", origin.name, "-d", str(flat_out), "--as",
                                 flat, config=config))
    assert "template tiny: from the archive" in imported
    project_file = flat_out / f"{flat}.project" / "lab.corral"
    assert "nothing to change" in _ok(origin.corral("plan", str(project_file), config=config))
    assert "tiny" not in _ok(origin.corral("template", "list", "--json", config=config))
    _ok(origin.corral("start", "-p", flat, config=config))
    assert _lines(f"{flat}-web", origin.hosts.uris["local"]) == (ROOT_LINE, DISK_LINE)
    _ok(origin.corral("remove", "-p", flat, "--yes", config=config))

    overlay = f"{origin.name}6"
    imported = _ok(origin.corral("import", "-p", origin.name, "-d",
                                 str(origin.archives / "out"), "--as", overlay, config=config))
    assert "template tiny: registered" in imported
    listed = json.loads(_ok(origin.corral("template", "list", "--json", config=config)))
    assert [t["name"] for t in listed] == ["tiny"]
    _ok(origin.corral("start", "-p", overlay, config=config))
    assert _lines(f"{overlay}-web", origin.hosts.uris["local"]) == (ROOT_LINE, DISK_LINE)
    _ok(origin.corral("remove", "-p", overlay, "--yes", config=config))


def test_a_single_vm_archive_boots_without_corral(origin: Origin) -> None:
    out = origin.archives / "single"
    out.mkdir()
    exported = _ok(origin.corral("export", "-p", origin.name, "-d", str(out), "-h", "web"))
    folder = out / f"{origin.name}-web"
    xml = folder / "hosts" / "web" / "standalone.xml"
    assert f"virsh define {xml}" in exported
    valid = subprocess.run(["virt-xml-validate", str(xml), "domain"], capture_output=True,
                           text=True, check=False)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    flat = folder / "hosts" / "web" / "web.qcow2"
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(flat)],
                                     capture_output=True, text=True, check=True).stdout)
    assert "backing-filename" not in info
    name = f"{origin.name}-web-standalone"
    conn = libvirt.open(origin.hosts.uris["local"])
    try:
        domain = conn.defineXML(xml.read_text())
        assert domain.name() == name
        try:
            domain.create()
            assert _lines(name, origin.hosts.uris["local"]) == (ROOT_LINE, DISK_LINE)
        finally:
            if domain.isActive():
                domain.destroy()
            domain.undefine()
    finally:
        conn.close()
    status = _ok(origin.corral("status", "--json"))
    assert name not in status  # never one of Corral's


def _state(uri: str, domain: str) -> str:
    conn = libvirt.open(uri)
    try:
        state = conn.lookupByName(domain).state()[0]
    finally:
        conn.close()
    return {libvirt.VIR_DOMAIN_RUNNING: "running", libvirt.VIR_DOMAIN_PAUSED: "paused",
            libvirt.VIR_DOMAIN_SHUTOFF: "shutoff"}.get(state, str(state))

"""The real ``corral`` program, run as a user runs it: output text and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def corral(*args: str, config: Path | None = None, cwd: Path | None = None):
    argv = [sys.executable, "-m", "corral"]
    if config is not None:
        argv += ["--config", str(config)]
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def test_site(tmp_path: Path) -> Path:
    config = tmp_path / "corral.toml"
    config.write_text(
        f'[paths]\ntemplates = "{tmp_path}/t"\nstate = "{tmp_path}/s.db"\nruns = "{tmp_path}/r"\n'
        '[service_hosts.local]\nuri = "test:///default"\n'
    )
    return config


def test_validate_ok_files():
    files = [str(EXAMPLES / n) for n in ("ldaptest.mln", "italy.mln", "os03.mln", "demo.corral")]
    result = corral("validate", *files)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok") == 4


def test_validate_reports_every_error_with_position(tmp_path):
    bad = tmp_path / "bad.mln"
    bad.write_text(
        "global { project p }\n"
        "host a {\n    memroy 128M\n    network eth0 { switch nosuch }\n}\n"
        "host b { vcpus many }\n"
    )
    result = corral("validate", str(bad))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert lines[0].startswith(f"{bad}:3:5: error: unknown key 'memroy'")
    assert "did you mean 'memory'" in lines[0]
    assert any(line.startswith(f"{bad}:4:") and "nosuch" in line for line in lines)
    assert any(line.startswith(f"{bad}:6:") and "many" in line for line in lines)
    assert "        memroy 128M\n        ^" in result.stderr


def test_validate_missing_file_is_a_clear_error(tmp_path):
    result = corral("validate", str(tmp_path / "nope.mln"))
    assert result.returncode == 1
    assert "nope.mln" in result.stderr and "Traceback" not in result.stderr


def test_show_json_follows_the_contract():
    result = corral("show", str(EXAMPLES / "italy.mln"), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["project"] == "italy"
    tre = data["hosts"]["tre"]
    assert {k: tre[k] for k in ("virt", "template", "memory_mib", "vcpus", "service_host")} == {
        "virt": "vmware", "template": "rhel5.vmdk", "memory_mib": 256, "vcpus": 1,
        "service_host": "milano",
    }
    (nic,) = tre["interfaces"]
    assert set(nic) >= {"name", "switch", "address", "netmask", "gateway", "mac"}
    assert nic["mac"].startswith("52:54:00:")
    assert tre["users"] == {}
    assert "lan" in data["switches"]
    assert corral("show", str(EXAMPLES / "italy.mln"), "--json").stdout == result.stdout


COMMANDS = [
    [], ["validate"], ["show"], ["plan"], ["up"], ["build"], ["upgrade"], ["start"], ["stop"],
    ["list"], ["remove"], ["status"], ["info"], ["rt"], ["template"], ["template", "add"],
    ["template", "list"], ["template", "remove"], ["template", "build"], ["vm"],
    *[["vm", c] for c in (
        "reboot", "shutdown", "destroy", "pause", "resume", "suspend", "restore", "mem-set",
        "vcpu-set", "describe", "log", "console",
    )],
    ["user"], *[["user", c] for c in ("add", "passwd", "list", "remove", "quota")],
    ["token"], *[["token", c] for c in ("create", "list", "revoke")],
    ["project"], *[["project", c] for c in ("share", "unshare", "shares")], ["audit"],
    ["inventory"],
    ["export"], ["import"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "corral")
def test_every_command_has_help_with_an_example(command):
    result = corral(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Example" in result.stdout or "example" in result.stdout.lower()


def test_unknown_command_is_a_usage_error():
    result = corral("bogus")
    assert result.returncode == 64
    assert "No such command 'bogus'" in result.stderr


def test_status_json_on_an_empty_service_host(test_site):
    result = corral("status", "--json", config=test_site)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["rows"] == []
    (local,) = shown["service_hosts"]
    assert (local["name"], local["state"], local["vms"]) == ("local", "up", 0)
    assert local["cpus"] and local["memory_mib"] and local["uptime_s"]


def test_remove_without_yes_and_without_terminal_refuses(test_site):
    result = corral("remove", "-p", "nothing", config=test_site)
    assert result.returncode == 3
    assert "project 'nothing' has nothing on any service host" in result.stderr


def test_bad_site_config_names_file_and_key(tmp_path):
    config = tmp_path / "corral.toml"
    config.write_text("[defaults]\nmemroy = 5\n")
    result = corral("status", config=config)
    assert result.returncode == 2
    assert str(config) in result.stderr and "memroy" in result.stderr


def test_vm_target_must_name_project_and_host(test_site):
    result = corral("vm", "reboot", "justahost", config=test_site)
    assert result.returncode == 7
    assert "write PROJECT.HOST" in result.stderr


def test_vm_migrate_refuses_an_unknown_service_host_or_vm(test_site):
    result = corral("vm", "migrate", "lab.web", "mars", config=test_site)
    assert result.returncode == 3
    assert "service host 'mars' is not in the site configuration" in result.stderr
    result = corral("vm", "migrate", "lab.web", "local", config=test_site)
    assert result.returncode == 3
    assert "no VM 'lab.web'" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_service_host_in_project(tmp_path, test_site):
    project = tmp_path / "p.corral"
    project.write_text("global { project p }\nhost a { service_host mars }\n")
    result = corral("plan", str(project), config=test_site)
    assert result.returncode == 9, result.stderr  # plan: changes to make
    result = corral("up", str(project), config=test_site)
    assert result.returncode == 1
    assert f"{project}:2:1: error: host a: service host 'mars'" in result.stderr


def _registered_rootfs(config: Path, name: str) -> None:
    """Register a small root filesystem as ``name`` in the site's registry."""
    from corral.images import TemplateRegistry

    tree = config.parent / "tree"
    (tree / "etc").mkdir(parents=True, exist_ok=True)
    (tree / "etc/hostname").write_text("debian\n")
    tar = config.parent / "rootfs.tar"
    subprocess.run(["tar", "-C", str(tree), "-cf", str(tar), "."], check=True)
    TemplateRegistry(config.parent / "t").add(name, None, rootfs=tar)


def test_template_build_rootfs_options(test_site: Path) -> None:
    """``--rootfs``: refused with ``--size`` or another builder, named
    ``debian-RELEASE-rootfs`` by default (a taken name is refused before any build)."""
    sized = corral("template", "build", "debian", "--rootfs", "--size", "2G", config=test_site)
    assert sized.returncode == 7
    assert "error: --size is for a VM's root disk; a rootfs template" in sized.stderr
    tiny = corral("template", "build", "tiny", "--rootfs", config=test_site)
    assert tiny.returncode == 7 and "for the debian builder, not 'tiny'" in tiny.stderr
    _registered_rootfs(test_site, "debian-trixie-rootfs")
    taken = corral("template", "build", "debian", "--rootfs", "--release", "trixie",
                   config=test_site)
    assert taken.returncode == 4
    assert "error: template debian-trixie-rootfs already exists" in taken.stderr


def test_template_build_from_an_lxc_host_says_it_builds_a_root_filesystem(
        test_site: Path, tmp_path: Path) -> None:
    project = tmp_path / "ck.corral"
    project.write_text("global { project ck }\nhost box {\n    template box-fs\n    lxc\n}\n")
    _registered_rootfs(test_site, "box-fs")
    built = corral("template", "build", "debian", "--from-project", str(project), "--host",
                   "box", config=test_site)
    assert built.returncode == 4, built.stderr
    assert "host box is an lxc host: building a root filesystem for its container" \
        in built.stderr
    assert "error: template box-fs already exists" in built.stderr


def test_template_list_shows_a_rootfs_template(test_site: Path) -> None:
    _registered_rootfs(test_site, "ct")
    table = corral("template", "list", config=test_site)
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if " ct " in line)
    assert "rootfs" in row
    listed = corral("template", "list", "--json", config=test_site)
    (only,) = json.loads(listed.stdout)
    assert only["kind"] == "rootfs"
    assert only["rootfs"] == str(test_site.parent / "t" / "ct" / "rootfs.tar")
    assert only["disk"] is None and list(only["sha256"]) == ["rootfs.tar"]

"""``corral set`` and ``corral unset`` as a user runs them: the file, the output, the exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LAB = """\
# the lab
global {
    project lab
}
superclass node {
    template tiny
    memory 128M
}
#include extra.corral
host web {
    superclass node
    memory 128M   # web needs more one day
    network eth0 {
        address dhcp
    }
}
"""
EXTRA = "host db {\n    superclass node\n}\n"


def corral(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral", *args], capture_output=True,
                          text=True, cwd=cwd, stdin=subprocess.DEVNULL, check=False,
                          env={**os.environ, "CORRAL_CONFIG": str(cwd / "none.toml")})


def project(tmp_path: Path) -> Path:
    directory = tmp_path / "projects"
    directory.mkdir()
    (directory / "extra.corral").write_text(EXTRA)
    lab = directory / "lab.corral"
    lab.write_text(LAB)
    lab.chmod(0o640)
    (tmp_path / "none.toml").write_text("")
    return lab


def test_set_changes_one_value_and_keeps_the_rest(tmp_path: Path) -> None:
    lab = project(tmp_path)
    done = corral("set", "projects/lab.corral", "host.web.memory", "256M", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "projects/lab.corral:12: memory 128M -> 256M\n"
    assert lab.read_text() == LAB.replace("memory 128M   # web", "memory 256M   # web")
    assert lab.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in lab.parent.iterdir()) == ["extra.corral", "lab.corral"]


def test_set_adds_a_new_interface_and_answers_json(tmp_path: Path) -> None:
    lab = project(tmp_path)
    done = corral("set", str(lab), "host.web.network.eth1.address", "dhcp", "--json",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "file": str(lab), "line": 16, "path": "host.web.network.eth1.address",
        "action": "added", "old": None, "new": "network eth1 { address dhcp }"}
    assert lab.read_text() == LAB.replace(
        "        address dhcp\n    }\n}\n",
        "        address dhcp\n    }\n    network eth1 {\n        address dhcp\n    }\n}\n")


def test_unset_removes_a_key_and_a_block(tmp_path: Path) -> None:
    lab = project(tmp_path)
    done = corral("unset", str(lab), "host.web.memory", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{lab}:12: removed memory 128M\n"
    block = corral("unset", str(lab), "host.web.network.eth0", cwd=tmp_path)
    assert block.returncode == 0, block.stderr
    assert lab.read_text() == LAB.replace("    memory 128M   # web needs more one day\n", "") \
        .replace("    network eth0 {\n        address dhcp\n    }\n", "")


def test_a_result_that_does_not_load_is_not_written(tmp_path: Path) -> None:
    lab = project(tmp_path)
    before = lab.stat().st_mtime_ns
    done = corral("set", str(lab), "host.web.memory", "lots", cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"{lab}:12:12: error: memory: 'lots' is not a size")
    assert "        memory lots   # web needs more one day\n               ^" in done.stderr
    assert f"not written: {lab}:12: memory 128M -> lots" in done.stderr
    assert lab.read_text() == LAB and lab.stat().st_mtime_ns == before
    assert sorted(p.name for p in lab.parent.iterdir()) == ["extra.corral", "lab.corral"]
    unknown = corral("set", str(lab), "host.web.memroy", "1G", cwd=tmp_path)
    assert unknown.returncode == 1 and "unknown key 'memroy'" in unknown.stderr
    assert lab.read_text() == LAB


def test_refusals_name_the_place_and_exit_without_a_traceback(tmp_path: Path) -> None:
    lab = project(tmp_path)
    extra = lab.parent / "extra.corral"
    included = corral("set", str(lab), "host.db.memory", "1G", cwd=tmp_path)
    assert included.returncode == 7
    assert included.stderr.startswith(f"error: {extra}:1:1: host.db.memory leads to `host db`")
    assert "edit that file instead" in included.stderr
    twice = lab.parent / "twice.corral"
    twice.write_text(LAB.replace("    superclass node\n    memory", "    memory 1G\n"
                                 "    superclass node\n    memory"))
    ambiguous = corral("set", str(twice), "host.web.memory", "2G", cwd=tmp_path)
    assert ambiguous.returncode == 7
    assert f"{twice}:11:5: host.web.memory is ambiguous" in ambiguous.stderr
    assert f"also at {twice}:13:5" in ambiguous.stderr
    missing = corral("unset", str(lab), "host.web.cpus", cwd=tmp_path)
    assert missing.returncode == 3 and "nothing to remove" in missing.stderr
    yaml = lab.parent / "lab.yaml"
    yaml.write_text("global: {project: lab}\nhost web: {template: tiny}\n")
    refused = corral("set", str(yaml), "host.web.template", "other", cwd=tmp_path)
    assert refused.returncode == 7 and "YAML" in refused.stderr
    absent = corral("set", str(lab.parent / "nope.corral"), "host.web.memory", "1G",
                    cwd=tmp_path)
    assert absent.returncode == 1 and "cannot read project file" in absent.stderr
    bad_path = corral("set", str(lab), "host..memory", "1G", cwd=tmp_path)
    assert bad_path.returncode == 7 and "empty segment" in bad_path.stderr
    for ran in (included, ambiguous, missing, refused, absent, bad_path):
        assert "Traceback" not in ran.stderr
    assert lab.read_text() == LAB and extra.read_text() == EXTRA


"""``corral up A B C``: many projects at once, each failing alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from corral.errors import NotFoundError, SourceErrors
from corral.ops.many import up_many


def project_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.corral"
    path.write_text(
        f"global {{ project {name} }}\nswitch lan {{ }}\n"
        "host a {\n template base\n qemu\n wait none\n network eth0 { switch lan }\n}\n"
    )
    return path


def test_every_project_comes_up_and_a_bad_one_fails_alone(session, tmp_path: Path) -> None:
    bad = tmp_path / "bad.corral"
    bad.write_text("global { project bad }\nhost a { memroy 1G }\n")
    files = [project_file(tmp_path, "ma"), bad, project_file(tmp_path, "mb"),
             tmp_path / "missing.corral"]
    result = up_many(session, files, wait=False)
    assert [r.project for r in result.results] == ["ma", "mb"]
    assert set(result.failed) == {str(bad), str(tmp_path / "missing.corral")}
    assert isinstance(result.failed[str(bad)], SourceErrors)
    assert not result.ok
    domains = {d.name for d in session.backend("local").observe(None).domains}
    assert {"ma-a", "mb-a"} <= domains
    shown = result.as_json()
    assert shown["failed"][str(bad)]["kind"] == "input"
    assert "unknown key 'memroy'" in shown["failed"][str(bad)]["error"]
    assert not isinstance(result.failed[str(bad)], NotFoundError)


def test_the_command_summarises_and_exits_with_the_first_failure(session, tmp_path) -> None:
    config = Path(session.site.paths.state).parent / "corral.toml"
    bad = tmp_path / "bad.corral"
    bad.write_text("global { project bad }\nhost a { memroy 1G }\n")
    argv = [sys.executable, "-m", "corral", "--config", str(config), "up", "--no-wait"]
    done = subprocess.run(
        [*argv, str(project_file(tmp_path, "mc")), str(bad)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "mc" in done.stdout and "FAILED:" in done.stdout
    ok = subprocess.run(
        [*argv, "--json", str(project_file(tmp_path, "md")), str(project_file(tmp_path, "me"))],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert [p["project"] for p in json.loads(ok.stdout)["projects"]] == ["md", "me"]


def test_a_session_boots_every_project_in_one_set_of_places_per_service_host(session) -> None:
    """The places of a service host are chosen once, by the first project that boots
    there, and the others share them (see corral.ops.booting)."""
    chosen: list[int] = []

    def choose() -> int:
        chosen.append(3)
        return 3

    first = session.boot_places("local", choose)
    assert session.boot_places("local", lambda: 9) is first
    assert (first.slots, chosen) == (3, [3])

"""``validate`` and ``show`` run where libvirt-python is not installed.

The real ``corral`` entry point runs in a child interpreter in which
``import libvirt`` fails (``sys.modules['libvirt'] = None`` is how Python
spells "this module cannot be imported"); backends load lazily, so only a
command that talks to a service host needs it, and says so clearly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ITALY = ROOT / "examples" / "italy.mln"

RUN_WITHOUT_LIBVIRT = """
import sys
sys.modules["libvirt"] = None
sys.argv = ["corral", *sys.argv[1:]]
from corral.cli.app import run
try:
    run()
finally:
    assert "libvirt" not in {m.split(".")[0] for m in sys.modules if sys.modules[m]}, \\
        "libvirt was imported"
"""


def corral_without_libvirt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_LIBVIRT, *args], capture_output=True, text=True,
        stdin=subprocess.DEVNULL, check=False, cwd=ROOT,
    )


def test_the_guard_really_hides_libvirt() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['libvirt'] = None; import libvirt"],
        capture_output=True, text=True, check=False,
    )
    assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr


def test_validate_and_show_need_no_libvirt() -> None:
    validated = corral_without_libvirt("validate", str(ITALY))
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.strip() == f"{ITALY}: ok"
    shown = corral_without_libvirt("show", str(ITALY), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["project"] == "italy"


def test_a_command_that_needs_libvirt_says_so(tmp_path: Path) -> None:
    config = tmp_path / "corral.toml"
    config.write_text(
        f'[paths]\ntemplates = "{tmp_path}/t"\nstate = "{tmp_path}/s.db"\n'
        '[service_hosts.local]\nuri = "test:///default"\n'
    )
    result = corral_without_libvirt("--config", str(config), "info")
    assert result.returncode == 5, result.stderr
    assert "Traceback" not in result.stderr
    assert "module 'libvirt' is missing" in result.stderr
    assert "libvirt-python" in result.stderr

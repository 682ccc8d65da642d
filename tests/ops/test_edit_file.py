"""``edit_file``: an edited project file is written whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.config import parse_site_config
from corral.errors import SourceErrors
from corral.ops import edit_file as editing
from corral.ops.files import replace_text

LAB = "global {\n    project lab\n}\nhost web {\n    template tiny\n    memory 128M\n}\n"


def test_a_file_that_cannot_be_replaced_is_left_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = tmp_path / "lab.corral"
    lab.write_text(LAB)

    def refuse(path: Path, text: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(editing, "replace_text", refuse)
    with pytest.raises(SourceErrors) as refused:
        editing.edit_file(parse_site_config("", tmp_path / "corral.toml"), lab, "host.web.memory",
                          ["256M"])
    assert refused.value.message.startswith(
        f"{lab}:1:1: error: cannot write project file: Permission denied (nothing was changed")
    assert lab.read_text() == LAB


def test_replacing_keeps_the_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    lab = tmp_path / "lab.corral"
    lab.write_text(LAB)
    lab.chmod(0o604)
    replace_text(lab, LAB.replace("128M", "256M"))
    assert lab.read_text() == LAB.replace("128M", "256M")
    assert lab.stat().st_mode & 0o777 == 0o604
    with pytest.raises(UnicodeEncodeError):
        replace_text(lab, "\udcff")  # cannot be written as UTF-8: nothing changes
    assert lab.read_text() == LAB.replace("128M", "256M")
    assert [p.name for p in tmp_path.iterdir()] == ["lab.corral"]

"""``corral --server URL set PROJECT PATH VALUE``: the file the server keeps for the
project, edited by the server with the same code as a local file; the same
summary, ``--json`` and exit codes as locally."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from remote_support import Sides, live_server
from server_support import LAB, Cast

from corral.ops.session import Session
from corral.state.texts import ProjectTexts


@pytest.fixture
def sides(app: FastAPI, admin_session: Session) -> Iterator[Sides]:
    config = admin_session.site.source
    assert config is not None
    with live_server(app) as url:
        yield Sides(config, url)


def test_set_and_unset_through_a_server_answer_as_locally(
    sides: Sides, cast: Cast, lab: dict[str, Any], admin_session: Session, tmp_path: Path
) -> None:
    dave = cast.tokens["writer"]
    remote = sides.remote(dave, "set", "lab", "superclass.node.memory", "192M")
    local_file = tmp_path / "lab.corral"
    local_file.write_text(LAB)
    local = sides.local("set", str(local_file), "superclass.node.memory", "192M")
    assert (remote.code, remote.err) == (local.code, local.err) == (0, "")
    assert remote.out == "lab.corral:8: memory 128M -> 192M\n"
    assert local.out == f"{local_file}:8: memory 128M -> 192M\n"
    saved = ProjectTexts(admin_session.require_store()).get("lab")
    assert saved is not None and saved.text == local_file.read_text()
    as_json = sides.remote(dave, "unset", "lab", "superclass.node.memory", "--json")
    assert as_json.code == 0
    assert json.loads(as_json.out) == {"file": "lab.corral", "line": 8,
                                       "path": "superclass.node.memory", "action": "removed",
                                       "old": "memory 192M", "new": None}


def test_refusals_through_a_server_keep_their_exit_codes(
    sides: Sides, cast: Cast, lab: dict[str, Any]
) -> None:
    alice, carol = cast.tokens["owner"], cast.tokens["reader"]
    invalid = sides.remote(alice, "set", "lab", "superclass.node.memory", "lots")
    assert invalid.code == 1 and invalid.out == ""
    assert invalid.err.startswith("lab.corral:8:12: error: memory: 'lots' is not a size")
    assert sides.remote(alice, "unset", "lab", "host.web.cpus").code == 3
    assert sides.remote(alice, "set", "lab", "host..x", "1").code == 7
    assert sides.remote(carol, "set", "lab", "host.web.vcpus", "1").code == 12
    assert sides.remote(cast.tokens["other"], "set", "lab", "host.web.vcpus", "1").code == 3
    a_file = sides.remote(alice, "set", "lab.corral", "host.web.vcpus", "1")
    assert a_file.code == 14 and "give the project's name" in a_file.err
    for ran in (invalid, a_file):
        assert "Traceback" not in ran.err

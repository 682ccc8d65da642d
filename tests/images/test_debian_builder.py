"""The debian builder's checks of what it is asked for, before anything runs.

Building and booting a Debian template is the integration test's
(tests/integration/test_debian_template.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.errors import InvalidRequest
from corral.images.debian_builder import build_debian, check_packages, check_size
from corral.ops.templates import DebianOptions


def test_package_names_are_debian_names_kept_once_in_order() -> None:
    assert check_packages(["htop", "g++", "libc6-dev", "htop", "python3.11"]) == (
        "htop", "g++", "libc6-dev", "python3.11")
    for bad in ("Htop", "-rf", "a b", "x;rm", "", "curl=1.0"):
        with pytest.raises(InvalidRequest, match="is not a package name apt accepts"):
            check_packages(["htop", bad])


def test_sizes_are_whole_mebibytes_or_gibibytes() -> None:
    assert check_size("2G") == "2G" and check_size("512M") == "512M"
    for bad in ("0G", "2", "2T", "1.5G", "G", "-2G"):
        with pytest.raises(InvalidRequest, match="give a whole number"):
            check_size(bad)


def test_an_unknown_release_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="release 'woody' is not one Corral builds"):
        build_debian(tmp_path / "w", release="woody")
    assert not (tmp_path / "w").exists()


def test_options_given_or_not() -> None:
    assert DebianOptions.given(None, None, None) is None
    assert DebianOptions.given("trixie", None, None) == DebianOptions(release="trixie")
    assert DebianOptions.given(None, ["htop"], "3G") == DebianOptions(
        packages=("htop",), size="3G")

"""Installers behind one interface: apt is this site's, the others are declared
and refused with their reason, never accepted to do nothing."""

from __future__ import annotations

import pytest

from corral.errors import InvalidRequest, NotFoundError
from corral.images.installers import INSTALLERS, installer_for, installer_of_template


def test_apt_serves_debian_and_ubuntu_and_is_available() -> None:
    apt = installer_for("debian")
    assert apt is installer_for("ubuntu")
    assert apt.name == "apt" and apt.available
    apt.require("building a debian template")  # no refusal
    assert apt.check(["curl", "g++", "curl"]) == ("curl", "g++")


@pytest.mark.parametrize(("system", "manager"), [
    ("fedora", "dnf"), ("rocky", "dnf"), ("opensuse", "zypper"), ("alpine", "apk"),
    ("arch", "pacman"),
])
def test_other_package_managers_are_declared_and_refused(system: str, manager: str) -> None:
    installer = installer_for(system)
    assert installer.name == manager and not installer.available
    with pytest.raises(InvalidRequest, match=(
            f"building a {system} template needs the {manager} installer .*not available "
            "on this site: templates are built from Debian packages only")):
        installer.require(f"building a {system} template")


def test_each_manager_spells_package_names_its_own_way() -> None:
    assert installer_for("fedora").check(["NetworkManager", "python3_pip"]) == (
        "NetworkManager", "python3_pip")
    with pytest.raises(InvalidRequest, match="'NetworkManager' is not a package name apt"):
        installer_for("debian").check(["NetworkManager"])
    with pytest.raises(InvalidRequest, match="not a package name pacman accepts"):
        installer_for("arch").check(["a b"])


def test_an_unknown_system_is_named() -> None:
    with pytest.raises(NotFoundError, match="no installer knows the operating system 'beos'"):
        installer_for("beos")
    assert installer_of_template("beos") is None
    assert installer_of_template(None) is None  # added from files: its cloud-init decides
    assert installer_of_template("ubuntu") is installer_for("debian")


def test_every_system_has_one_installer() -> None:
    systems = [s for installer in INSTALLERS for s in installer.systems]
    assert len(systems) == len(set(systems))

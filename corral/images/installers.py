"""Package installers, one per package manager, behind one interface.

A host's ``packages`` reach its guest in one of two ways, and which one is
the installer's business:

* baked: ``corral template build`` installs them into the template, so
  every guest made from it has them at its first boot without a mirror
  (the way for lab networks that reach none);
* at first boot: the guest's own cloud-init installs whatever the template
  does not already hold, from a mirror the guest must reach (its
  ``packages`` module, which calls the distribution's package manager).

apt (Debian, Ubuntu) is the installer this site has: templates are built
from Debian packages with ``mmdebstrap``. The others are declared so that a
request for them is refused with a reason instead of being accepted and
doing nothing: a template of their systems cannot be built here, and a
template registered as one of their systems cannot be given packages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from corral.errors import InvalidRequest, NotFoundError


@dataclass(frozen=True, slots=True)
class Installer:
    """What one package manager can do for Corral on this site.

    ``systems`` are the operating system names (a template's ``os``) it
    serves; ``name_pattern`` what a package name of its own looks like;
    ``unavailable`` is None for an installer this site has, else why not.
    """

    name: str
    systems: tuple[str, ...]
    name_pattern: re.Pattern[str]
    name_rule: str
    unavailable: str | None = None

    @property
    def available(self) -> bool:
        return self.unavailable is None

    def require(self, purpose: str) -> None:
        """Refuse ``purpose`` when this site has no such installer."""
        if self.unavailable is not None:
            raise InvalidRequest(
                f"{purpose} needs the {self.name} installer "
                f"({', '.join(self.systems)}), which is not available on this site: "
                f"{self.unavailable}",
                hint="build a Debian template (corral template build debian)",
            )

    def check(self, packages: Sequence[str]) -> tuple[str, ...]:
        """The package names, each refused when it is not a name this manager knows
        how to spell; repeats dropped, order kept."""
        for package in packages:
            if not self.name_pattern.fullmatch(package):
                raise InvalidRequest(f"'{package}' is not a package name {self.name} accepts",
                                     hint=self.name_rule)
        return tuple(dict.fromkeys(packages))


_NOT_HERE = "templates are built from Debian packages only"

INSTALLERS: tuple[Installer, ...] = (
    Installer("apt", ("debian", "ubuntu"), re.compile(r"[a-z0-9][a-z0-9+.-]+"),
              "lower-case letters, digits and + . -"),
    Installer("dnf", ("fedora", "rocky", "almalinux", "centos", "rhel"),
              re.compile(r"[A-Za-z0-9][A-Za-z0-9_+.-]*"), "letters, digits and _ + . -",
              unavailable=_NOT_HERE),
    Installer("zypper", ("opensuse", "sles"),
              re.compile(r"[A-Za-z0-9][A-Za-z0-9_+.-]*"), "letters, digits and _ + . -",
              unavailable=_NOT_HERE),
    Installer("apk", ("alpine",), re.compile(r"[a-z0-9][a-z0-9_+.-]*"),
              "lower-case letters, digits and _ + . -", unavailable=_NOT_HERE),
    Installer("pacman", ("arch",), re.compile(r"[a-z0-9@_+][a-z0-9@._+-]*"),
              "lower-case letters, digits and @ . _ + -", unavailable=_NOT_HERE),
)


def installer_for(system: str) -> Installer:
    """The installer of operating system ``system``; an unknown system is refused."""
    for installer in INSTALLERS:
        if system in installer.systems:
            return installer
    known = sorted(s for i in INSTALLERS for s in i.systems)
    raise NotFoundError(f"no installer knows the operating system '{system}'",
                        hint=f"known systems: {', '.join(known)}")


def installer_of_template(system: str | None) -> Installer | None:
    """The installer of a template that records ``system`` (None for a template
    added from files, whose system Corral cannot vouch for: its guest's own
    cloud-init decides what ``packages`` does)."""
    if system is None:
        return None
    for installer in INSTALLERS:
        if system in installer.systems:
            return installer
    return None

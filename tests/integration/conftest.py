"""Session fixtures of the integration tests on the real local libvirtd (QEMU, TCG).

What is expensive is shared: the tiny template is built once per test session
into a private template registry, and each module brings up its project once.
Everything lives under one world-readable scratch directory, because QEMU runs
as ``libvirt-qemu`` and must read the template and the run copies. Whatever a
test brings up is removed in its teardown, also when it fails; at the very end
the template must still have the bytes it was built with.
"""

from __future__ import annotations

import random
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral.config import parse_site_config
from corral.images.registry import Template
from corral.ops.templates import build_template

from .fakehosts import FakeHosts, fake_hosts_up
from .support import URI, FileFacts, Site, changed_facts, sha256, site_toml, template_facts

SCRATCH_PARENT = Path("/var/tmp")


def _libvirt_or_skip() -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    import libvirt

    try:
        libvirt.open(URI).close()
    except libvirt.libvirtError as error:
        pytest.skip(f"libvirtd does not answer at {URI}: {error}")


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    """A site config whose templates, state database and run copies live in a scratch dir."""
    _libvirt_or_skip()
    root = Path(tempfile.mkdtemp(prefix="corral-it-", dir=SCRATCH_PARENT))
    for path in (root, root / "runs"):
        path.mkdir(exist_ok=True)
        path.chmod(0o755)
    toml = root / "corral.toml"
    toml.write_text(site_toml(root))
    yield Site(parse_site_config(toml.read_text(), toml), toml, root)
    shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class BuiltTemplate:
    template: Template
    digests: dict[str, str]  # file path -> sha256 right after the build
    facts: dict[str, FileFacts]  # path -> owner, mode, xattrs, ctime... after the build


@pytest.fixture(scope="session")
def tiny(site: Site) -> Iterator[BuiltTemplate]:
    """The tiny template, built once per session; at the end its bytes, owners,
    modes and xattrs must be unchanged (libvirt never relabelled it)."""
    with site.session() as session:
        template = build_template(session, "tiny")
    (site.root / "templates").chmod(0o755)
    files = [p for p in (template.disk, template.kernel, template.initrd) if p]
    built = BuiltTemplate(
        template, {str(p): sha256(p) for p in files}, template_facts(template.directory)
    )
    yield built
    with site.session() as session:
        session.registry.verify("tiny")
    changed = [p for p, digest in built.digests.items() if sha256(Path(p)) != digest]
    assert not changed, f"template files changed during the tests: {changed}"
    touched = changed_facts(built.facts, template_facts(template.directory))
    assert not touched, f"template files were relabelled during the tests: {touched}"


@pytest.fixture(scope="session")
def subnets() -> Callable[[], int]:
    """Distinct third octets for 10.240.X.0/24 switches, in a random order per session."""
    free = list(range(2, 250))
    random.Random(secrets.randbits(32)).shuffle(free)
    return free.pop


@pytest.fixture(scope="session")
def three_hosts() -> Iterator[FakeHosts]:
    """Three fake service hosts (h1..h3, plus local) with the tiny template built,
    shared by every many-hosts test of the session; taken down at its end."""
    with fake_hosts_up(3) as hosts:
        built = hosts.corral("template", "build", "tiny")
        assert built.returncode == 0, built.stdout + built.stderr
        yield hosts

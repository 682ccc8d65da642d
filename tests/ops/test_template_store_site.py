"""Which directory a service host keeps its template copies in, from the site config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from corral.backends.libvirt import names, templatestore
from corral.backends.libvirt.backend import LibvirtBackend
from corral.config import SiteConfig, parse_site_config
from corral.ops import projects
from corral.ops.session import Session
from corral.ops.templates import template_copies

SITE = """
[paths]
templates = "/srv/site/templates"
runs = "/srv/site/runs"
state = "STATE"

[service_hosts.local]
uri = "test:///default"

[service_hosts.milano]
uri = "qemu+tls://milano/system"
storage = "/data/corral-templates"

[service_hosts.roma]
uri = "qemu+ssh://roma/system"
"""


def test_remote_hosts_keep_copies_in_their_storage_else_the_site_templates_path(
    tmp_path: Path,
) -> None:
    toml = tmp_path / "corral.toml"
    toml.write_text(SITE.replace("STATE", str(tmp_path / "state.db")))
    with Session(parse_site_config(toml.read_text(), toml)) as session:
        stores = {}
        for name in ("local", "milano", "roma"):
            backend = session.backend(name)
            assert isinstance(backend, LibvirtBackend)
            stores[name] = backend.template_store
        assert stores["local"] is None  # this machine uses the registry's files
        assert stores["milano"] is not None and stores["roma"] is not None
        assert stores["milano"].directory == "/data/corral-templates"
        assert stores["roma"].directory == "/srv/site/templates"
        assert stores["milano"].spec.name == "corral.templates"
        # this machine holds no copies and needs no connection to say so
        assert template_copies(session, "local").as_json() == {
            "copies": [], "problems": [], "unreachable": {}}


def test_the_template_store_is_no_projects_pool() -> None:
    """observe, status and remove never take the store for a project's pool."""
    assert names.project_of_pool(templatestore.POOL) is None
    assert names.volume_group_of_pool(templatestore.POOL) is None


def test_a_service_host_keeps_run_copies_in_its_runs_else_the_site_runs_path(
    tmp_path: Path,
) -> None:
    """``[service_hosts.X] runs``: where that machine's project pools live."""
    toml = tmp_path / "corral.toml"
    toml.write_text(SITE.replace("STATE", str(tmp_path / "state.db")).replace(
        'storage = "/data/corral-templates"\n',
        'storage = "/data/corral-templates"\nruns = "/data/corral-runs"\n'))
    site = parse_site_config(toml.read_text(), toml)
    assert [str(site.runs_of(n)) for n in ("milano", "roma", "local", "unknown")] == [
        "/data/corral-runs", "/srv/site/runs", "/srv/site/runs", "/srv/site/runs"]
    with Session(site) as session:
        dirs = {}
        for name in ("milano", "roma"):
            backend = session.backend(name)
            assert isinstance(backend, LibvirtBackend)
            dirs[name] = backend.runs_dir
        assert dirs == {"milano": "/data/corral-runs", "roma": "/srv/site/runs"}


def test_a_projects_volumes_are_made_in_its_service_hosts_runs(
    session: Session, site: SiteConfig, lab_file: Callable[..., Path], tmp_path: Path,
) -> None:
    """Built on a service host with a ``runs`` of its own, the project's pool and its
    run copies are there, not under the site's ``paths.runs``."""
    own = tmp_path / "local-runs"
    local = site.service_hosts["local"].model_copy(update={"runs": str(own)})
    session.site = site.model_copy(update={"service_hosts": {"local": local}})
    assert projects.build(session, lab_file()).ok
    conn = session.backend("local").conn  # type: ignore[attr-defined]
    pool = conn.storagePoolLookupByName(names.pool_name("lab"))
    paths = sorted(pool.storageVolLookupByName(v).path() for v in pool.listVolumes())
    assert paths and all(p.startswith(f"{own}/lab/") for p in paths), paths

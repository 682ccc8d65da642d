"""Which directory a service host keeps its template copies in, from the site config."""

from __future__ import annotations

from pathlib import Path

from corral.backends.libvirt import names, templatestore
from corral.backends.libvirt.backend import LibvirtBackend
from corral.config import parse_site_config
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

"""Site configuration: lookup order, typed values, errors naming file and key."""

from pathlib import Path

import pytest

from corral.config import LOCAL_URI, SiteConfig, load_site_config
from corral.errors import ConfigError
from corral.model.project import Virt

FULL = """\
[defaults]
template = "tiny"
memory = "128M"
size = "2G"
virt = "qemu"
virt_type = "qemu"
service_host = "milano"

[paths]
templates = "/srv/corral/templates"
state = "/srv/corral/state.db"
runs = "/srv/corral/runs"

[service_hosts.milano]
uri = "qemu+ssh://milano/system"
max_vcpus = 16
max_memory = "32G"

[server]
listen = "0.0.0.0:8080"
allowed_networks = ["10.0.0.0/8", "192.168.1.7"]
"""


def test_builtin_defaults_run_on_the_local_machine(tmp_path: Path) -> None:
    site = load_site_config(None, environ={}, search=[tmp_path / "none.toml"])
    assert site == SiteConfig()
    assert site.service_hosts["local"].uri == LOCAL_URI == "qemu:///system"
    assert (site.defaults.memory, site.defaults.virt, site.defaults.virt_type) == (
        128,
        Virt.KVM,
        "auto",
    )
    assert site.paths.state == Path("/var/lib/corral/state.db")


def test_a_full_file_is_read_with_units_and_local_kept(tmp_path: Path) -> None:
    path = tmp_path / "corral.toml"
    path.write_text(FULL)
    site = load_site_config(path, environ={})
    assert (site.defaults.memory, site.defaults.size, site.defaults.virt) == (128, 2048, Virt.QEMU)
    assert site.service_hosts["milano"].max_memory == 32768
    assert set(site.service_hosts) == {"local", "milano"}
    assert site.server.allowed_networks == ("10.0.0.0/8", "192.168.1.7/32")
    assert site.paths.templates == Path("/srv/corral/templates")
    assert site.source == path


def test_lookup_order_explicit_then_environment_then_search_path(tmp_path: Path) -> None:
    explicit, from_env, system, user = (tmp_path / f"{n}.toml" for n in ("e", "v", "s", "u"))
    for number, path in enumerate((explicit, from_env, system, user), start=1):
        path.write_text(f"[defaults]\nmemory = {number}\n")
    env = {"CORRAL_CONFIG": str(from_env)}
    search = [system, user]
    assert load_site_config(explicit, env, search).defaults.memory == 1
    assert load_site_config(None, env, search).defaults.memory == 2
    assert load_site_config(None, {}, search).defaults.memory == 3
    system.unlink()
    assert load_site_config(None, {}, search).defaults.memory == 4


def test_unknown_key_names_file_key_and_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "corral.toml"
    path.write_text("[defaults]\nmemroy = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_site_config(path, environ={})
    assert caught.value.message == f"{path}: unknown key 'defaults.memroy'"
    assert caught.value.hint == "did you mean 'memory'?"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[defaults]\nvirt_type = 'fast'\n",
            "defaults.virt_type: Input should be 'auto', 'kvm' or 'qemu'",
        ),
        ("[defaults]\nmemory = '12X'\n", "defaults.memory: '12X' is not a size"),
        ("[service_hosts.b]\nmax_vcpus = 2\n", "service_hosts.b.uri: Field required"),
        (
            "[service_hosts.b]\nuri = 'test:///default'\nsite_bridge = 'br site'\n",
            "service_hosts.b.site_bridge: 'br site' is not a bridge name",
        ),
        ("[server]\nallowed_networks = ['10.0.0.300/8']\n", "server.allowed_networks"),
        ("[service_hosts.b]\nuri = 'test:///default'\nruns = 'runs'\n",
         "service_hosts.b.runs: String should match pattern '^/'"),
        ("[defaults]\nservice_host = 'nowhere'\n", "defaults.service_host 'nowhere' is not a"),
        ("[defaults\n", "Expected ']'"),
        ("source = '/x'\n", "unknown key 'source'"),
    ],
)
def test_bad_values_are_config_errors_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "corral.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_site_config(path, environ={})
    assert caught.value.message.startswith(f"{path}: ")
    assert message in caught.value.message


def test_a_named_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="site config file not found"):
        load_site_config(tmp_path / "missing.toml", environ={})
    with pytest.raises(ConfigError, match=r"from \$CORRAL_CONFIG"):
        load_site_config(None, environ={"CORRAL_CONFIG": str(tmp_path / "gone.toml")})


def _site(tmp_path: Path, text: str) -> SiteConfig:
    path = tmp_path / "corral.toml"
    path.write_text(text)
    return load_site_config(path, environ={})


def test_placement_presets_the_only_service_host_and_the_site_default(tmp_path: Path) -> None:
    builtin = SiteConfig()
    assert builtin.defaults.service_host is None and builtin.defaults.placement == "spread"
    assert (builtin.schedulable(), builtin.preset_service_host()) == (["local"], "local")
    pinned = _site(tmp_path, FULL)
    assert (pinned.preset_service_host(), pinned.fallback_service_host()) == ("milano", "milano")


def test_the_scheduler_uses_the_service_hosts_the_site_lists(tmp_path: Path) -> None:
    two = '[service_hosts.h2]\nuri = "test:///default"\n[service_hosts.h1]\nuri = "test:///default"\n'
    named = _site(tmp_path, two)
    assert named.schedulable() == ["h1", "h2"]  # local exists but was not listed
    assert named.preset_service_host() is None
    assert named.fallback_service_host() == "h1"
    with_local = _site(tmp_path, two + '[service_hosts.local]\nuri = "qemu:///system"\n')
    assert with_local.schedulable() == ["h1", "h2", "local"]
    kept_out = _site(tmp_path, two + "schedule = false\n[defaults]\nplacement = 'pack'\n")
    assert kept_out.schedulable() == ["h2"]
    assert (kept_out.preset_service_host(), kept_out.defaults.placement) == ("h2", "pack")


def test_the_state_database_is_the_sqlite_file_unless_a_url_is_given(tmp_path: Path) -> None:
    assert _site(tmp_path, "").state_location() == Path("/var/lib/corral/state.db")
    assert _site(tmp_path, "[paths]\nstate = '/srv/s.db'\n").state_location() == Path("/srv/s.db")
    url = "postgresql+psycopg://corral:pw@db.example/corral"
    assert _site(tmp_path, f"[state]\nurl = '{url}'\n").state_location() == url


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[state]\nurl = 'mysql://db/corral'\n", "dialect 'mysql' is not supported"),
        ("[state]\nurl = 'no url'\n", "state.url: 'no url' is not a database URL"),
        ("[state]\nurl = 'sqlite:////x.db'\n[paths]\nstate = '/y.db'\n",
         "paths.state and state.url both name the state database"),
        ("[state]\npath = '/x.db'\n", "unknown key 'state.path'"),
    ],
)
def test_a_state_url_that_cannot_act_is_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _site(tmp_path, text)
    assert message in caught.value.message


def test_the_session_opens_the_database_of_the_state_url(tmp_path: Path) -> None:
    from corral.ops.session import Session

    site = _site(tmp_path, f"[state]\nurl = 'sqlite:///{tmp_path}/by-url/state.db'\n")
    with Session(site) as session:
        store = session.require_store()
        assert store.path == tmp_path / "by-url" / "state.db"
        store.record_project("lab", "/lab.corral", "{}", "h")
    assert (tmp_path / "by-url" / "state.db").is_file()

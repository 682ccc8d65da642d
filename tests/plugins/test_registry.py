"""Plugins come from the corral.plugins entry-point group; claims route host keys."""

from corral.plugins.apache import ApachePlugin
from corral.plugins.autoenum import AutoenumPlugin
from corral.plugins.registry import PluginRegistry


def test_builtin_plugins_load_through_entry_points() -> None:
    registry = PluginRegistry.from_entry_points()
    assert registry.names() == ["apache", "autoenum", "files", "sshkey"]
    assert isinstance(registry.get("apache"), ApachePlugin)
    assert registry.claimant("sshkey") is registry.get("sshkey")
    assert registry.claimant("autoenum") is None  # a generator: global only
    assert not AutoenumPlugin().applies_per_host and ApachePlugin().applies_per_host


def test_a_key_no_plugin_claims_is_unknown_in_a_host(errors) -> None:
    found = errors(
        "global { project p }\nhost a { autoenum { numhosts 3 } }\n",
        plugins=PluginRegistry.of([ApachePlugin()]),
    )
    assert found == ["2:10: unknown key 'autoenum'"]


def test_a_registry_without_a_plugin_reports_its_global_block(errors) -> None:
    found = errors(
        "global { project p\n sshkey { a b } }\n", plugins=PluginRegistry.of([ApachePlugin()])
    )
    assert found == ["2:2: unknown plugin 'sshkey' (installed: apache)"]

"""Find plugins through the ``corral.plugins`` entry-point group.

Any installed distribution can add a plugin by declaring an entry point in
that group (``name = "package.module:Class"``); corral's own four are declared
in its ``pyproject.toml``. The registry is built once per load and passed
along, never kept in a global.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points

from corral.errors import ConfigError
from corral.plugins.base import Plugin

ENTRY_POINT_GROUP = "corral.plugins"


@dataclass(frozen=True, slots=True)
class PluginRegistry:
    """Plugins by name, and which plugin claims which host-level key."""

    plugins: Mapping[str, Plugin]

    @classmethod
    def of(cls, plugins: Iterable[Plugin]) -> PluginRegistry:
        return cls({plugin.name: plugin for plugin in plugins})

    @classmethod
    def from_entry_points(cls, group: str = ENTRY_POINT_GROUP) -> PluginRegistry:
        """Load every plugin installed in ``group``; a broken one is a :class:`ConfigError`."""
        found: list[Plugin] = []
        for entry in sorted(entry_points(group=group), key=lambda e: e.name):
            try:
                plugin_class = entry.load()
                plugin = plugin_class()
            except Exception as error:  # any import failure of third-party code
                raise ConfigError(
                    f"plugin '{entry.name}' ({entry.value}) cannot be loaded: {error}"
                ) from error
            if not isinstance(plugin, Plugin) or plugin.name != entry.name:
                raise ConfigError(
                    f"plugin '{entry.name}' ({entry.value}) is not a corral Plugin "
                    "named after its entry point"
                )
            found.append(plugin)
        return cls.of(found)

    def get(self, name: str) -> Plugin | None:
        return self.plugins.get(name)

    def names(self) -> list[str]:
        return sorted(self.plugins)

    def claimant(self, key: str) -> Plugin | None:
        """The plugin that accepts ``key`` inside a host stanza, if any."""
        for plugin in self.plugins.values():
            if key in plugin.claims:
                return plugin
        return None

"""``apache``: configure the Apache web server in the guest (MLN Listing 7).

    global { apache { doc_root /var/www } }
    host web14 { apache { max_connections 300 } }

The host's block is merged over the global one, so ``web14`` gets one
configuration with both settings. Settings: ``doc_root`` (DocumentRoot),
``max_connections`` (MaxRequestWorkers), ``listen`` (a port), ``server_name``,
``server_admin``. The result is one file, :data:`CONFIG_PATH`, written into
the guest through the same mechanism as the ``files`` plugin, and the
``apache2`` package added to the host's packages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.lang.tree import Statement
from corral.model import values
from corral.model.project import FileSpec, Host
from corral.model.schema import KeySpec, Shape
from corral.model.statements import read_block, simple_fields
from corral.plugins.base import ApplyContext, Plugin
from corral.plugins.files import with_files

CONFIG_PATH = "/etc/apache2/conf-enabled/corral.conf"
PACKAGE = "apache2"


def _absolute(text: str) -> str:
    if not text.startswith("/"):
        raise ValueError(f"'{text}' is not an absolute path")
    return text


def _port(text: str) -> int:
    port = values.positive_int(text)
    if port > 65535:
        raise ValueError(f"{port} is not a TCP port")
    return port


SETTINGS = {
    spec.name: spec
    for spec in (
        KeySpec("doc_root", Shape.VALUE, "DocumentRoot", _absolute, "DocumentRoot"),
        KeySpec(
            "max_connections",
            Shape.VALUE,
            "MaxRequestWorkers",
            values.positive_int,
            "MaxRequestWorkers",
        ),
        KeySpec("listen", Shape.VALUE, "port", _port, "Listen"),
        KeySpec("server_name", Shape.VALUE, "ServerName", values.text_value, "ServerName"),
        KeySpec("server_admin", Shape.VALUE, "ServerAdmin", values.text_value, "ServerAdmin"),
    )
}


class ApachePlugin(Plugin):
    """Writes an Apache configuration file from the merged settings."""

    name = "apache"
    claims = frozenset({"apache"})

    def apply(
        self, host: Host, settings: tuple[Statement, ...], context: ApplyContext
    ) -> Mapping[str, Any]:
        groups = read_block(settings, SETTINGS, context.sink)
        directives = simple_fields(groups, SETTINGS, context.sink)
        lines = [f"# Apache settings of {context.project}/{host.name}, written by corral."]
        lines += [f"{name} {value}" for name, value in directives.items()]
        spec = FileSpec(path=CONFIG_PATH, content="\n".join(lines) + "\n")
        packages = host.packages if PACKAGE in host.packages else (*host.packages, PACKAGE)
        return {"files": with_files(host, [spec]), "packages": packages}

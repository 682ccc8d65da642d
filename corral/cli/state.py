"""Per-invocation CLI state: the site config path and a lazily opened session."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from corral.cli.console import RichReporter

if TYPE_CHECKING:
    from corral.config import SiteConfig
    from corral.ops.session import Session


@dataclass
class CliState:
    config_path: Path | None = None
    _session: Session | None = field(default=None, repr=False)

    def session(self, quiet: bool = False) -> Session:
        """Open the operations session on first use (site config, store, backends)."""
        from corral.ops.session import Session

        if self._session is None:
            self._session = Session.open(self.config_path, RichReporter(quiet=quiet))
        return self._session

    def site(self) -> SiteConfig:
        from corral.config import load_site_config

        return load_site_config(self.config_path)


def state_of(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
    return obj

"""Per-invocation CLI state: the site config path or the server, and the operations."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from corral.cli.console import RichReporter
from corral.errors import LocalOnly

if TYPE_CHECKING:
    from corral.client.interface import Operations
    from corral.client.transport import Remote, Transport
    from corral.config import SiteConfig
    from corral.ops.session import Session


@dataclass
class CliState:
    config_path: Path | None = None
    remote: Remote | None = None  # --server: every command through its API
    _session: Session | None = field(default=None, repr=False)
    _transport: Transport | None = field(default=None, repr=False)

    def operations(self, quiet: bool = False) -> Operations:
        """What the commands call: this machine's operations, or the server's."""
        if self.remote is None:
            from corral.client.local import LocalOperations

            return LocalOperations(lambda: self.session(quiet), self.site)
        from corral.client.remote import RemoteOperations
        from corral.client.transport import Transport

        if self._transport is None:
            self._transport = Transport(self.remote)
        return RemoteOperations(self._transport, RichReporter(quiet=quiet))

    def close(self) -> None:
        """Close what the invocation opened (libvirt connections, the server's client)."""
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def local_only(self, command: str, why: str) -> None:
        """Refuse ``command`` when it was asked of a server (``--server``)."""
        if self.remote is not None:
            raise LocalOnly(f"`corral {command}` cannot run against a server ({self.remote.url}):"
                            f" {why}", hint="run it on the server's machine, without --server")

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


def operations(ctx: typer.Context, quiet: bool = False) -> Operations:
    """The operations of this invocation (``state_of(ctx).operations``)."""
    return state_of(ctx).operations(quiet)

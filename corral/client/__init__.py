"""The CLI's operations seen through one interface: on this machine or through a server.

``corral --server URL`` sends every command to the management server's REST
API instead of calling :mod:`corral.ops` here; both sides return the same
typed results, so the CLI's renderers print them the same way
(``docs/remote-cli.md``).
"""

"""``python -m corral``: the same as the ``corral`` command."""

from corral.cli.app import run

run()

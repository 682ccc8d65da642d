"""The serial console: what it printed so far, and an interactive attach.

Domains log their serial console to ``/var/log/libvirt/qemu/NAME-console.log``
with ``append='off'``, so the file holds the output of the current (or last)
boot. That file lives on the service host: for a local URI Corral reads it
directly. For a remote URI the file is out of reach through libvirt's API
(a console stream only carries output from the moment it is opened), so
:func:`console_output` raises BackendError saying so; the interactive console
works everywhere.

The interactive attach runs ``virsh -c URI console NAME``: virsh already does
raw terminal mode, the ``Ctrl+]`` escape and window-size handling, which a
hand-written stream pump would have to re-implement.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from corral.backends.libvirt import names
from corral.errors import BackendError


def console_output(domain: str, *, local: bool, uri: str) -> str:
    """The console log of ``domain`` (empty when it never printed anything)."""
    if not local:
        raise BackendError(
            f"the console log of {domain} is on the remote service host ({uri})",
            hint="use 'corral vm console' to watch it live",
        )
    path = Path(names.console_log_path(domain))
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise BackendError(f"cannot read the console log {path}: {exc.strerror}") from exc


def console_command(domain: str, uri: str) -> list[str]:
    """argv for an interactive console on ``domain``; exit it with Ctrl+]."""
    virsh = shutil.which("virsh")
    if virsh is None:
        raise BackendError(
            "cannot attach a console: virsh is not installed", hint="install libvirt-clients"
        )
    return [virsh, "-c", uri, "console", "--force", domain]

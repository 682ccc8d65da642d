"""``sshkey``: install public keys for users of the guest (MLN Listing 7).

    global { sshkey { nagios keys/nagios.pub } }       # every host
    host web14 { sshkey { deploy keys/a.pub keys/b.pub } }

Each line is ``USER KEYFILE...``. Key files are read when the project is
loaded, relative to the file that names them; each non-empty, non-comment line
is one OpenSSH public key. The host's block is merged over the global one (a
user listed in both takes the host's files). The keys land in
``Host.ssh_keys[user]``, which the seed builder writes to the user's
``~/.ssh/authorized_keys``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.lang.tree import Statement, Word
from corral.model import values
from corral.model.project import Host
from corral.plugins.base import ApplyContext, Plugin, local_file

KEY_TYPES = ("ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-")


class SshKeyPlugin(Plugin):
    """Reads public key files into ``Host.ssh_keys``."""

    name = "sshkey"
    claims = frozenset({"sshkey"})

    def apply(
        self, host: Host, settings: tuple[Statement, ...], context: ApplyContext
    ) -> Mapping[str, Any]:
        keys = dict(host.ssh_keys)
        for statement in settings:
            user = statement.key.text
            try:
                values.user_name(user)
            except ValueError as error:
                context.sink.error(statement.span, f"sshkey: {error}")
                continue
            if statement.block is not None or not statement.values:
                context.sink.error(statement.span, f"sshkey: write {user} KEYFILE...")
                continue
            found = [key for word in statement.values for key in _read_keys(word, context)]
            keys[user] = tuple(dict.fromkeys((*keys.get(user, ()), *found)))
        return {"ssh_keys": keys}


def _read_keys(word: Word, context: ApplyContext) -> list[str]:
    path = local_file(word, context, "sshkey")
    if path is None:
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        context.sink.error(word.span, f"sshkey: cannot read key file {path}: {reason}")
        return []
    keys = [line.strip() for line in text.splitlines()]
    keys = [key for key in keys if key and not key.startswith("#")]
    if not keys or not all(key.startswith(KEY_TYPES) for key in keys):
        context.sink.error(word.span, f"sshkey: {path} does not hold OpenSSH public keys")
        return []
    return keys

"""Users, passwords and owned files of a seed, applied by Debian's cloud-init with real tools.

``cloudinit_users_driver.py`` runs cloud-init's own module handlers
(write_files, users_groups, set_passwords, write_files_deferred, in the order
of Debian's cloud.cfg) with the real useradd, chpasswd and chown, inside a
private mount namespace over a copy of /etc, so the machine is not touched.
The seed is the ``accounts`` host of the corpus: new users with plain, $6$
and crypt:-marked DES passwords, a ``debian`` user that exists before (as in
a cloud image), root's password, keys, and files owned by a new user and a
new group. The two control runs show why the seed uses chpasswd and defer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudinit_corpus import SYSTEM_PYTHON, corpus, needs_cloud_init
from passlib.hash import sha512_crypt

DRIVER = Path(__file__).parent / "cloudinit_users_driver.py"
ACCOUNTS = next(seed for seed in corpus() if seed.name == "features.corral.accounts")
OLD_DEBIAN_HASH = "$6$old$0ldHashOfTheImageUser"

pytestmark = [
    needs_cloud_init,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("unshare") is None,
        reason="needs root and unshare for a private mount namespace",
    ),
]


def apply(tmp_path: Path, mode: str) -> dict[str, Any]:
    user_data = tmp_path / "user-data"
    user_data.write_text(ACCOUNTS.documents.user_data)
    work = tmp_path / mode
    work.mkdir()
    env = {**os.environ, "CORRAL_OUTER_MNT_NS": os.readlink("/proc/self/ns/mnt")}
    done = subprocess.run(
        ["unshare", "-m", SYSTEM_PYTHON, str(DRIVER), str(work), str(user_data), mode],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def seed_hashes() -> dict[str, str]:
    config = yaml.safe_load(ACCOUNTS.documents.user_data)
    return {entry["name"]: entry["password"] for entry in config["chpasswd"]["users"]}


def test_every_password_reaches_new_and_existing_users(tmp_path: Path) -> None:
    result = apply(tmp_path, "seed")
    assert result["errors"] == {}
    users = result["users"]
    hashes = seed_hashes()
    assert set(hashes) == {"alice", "bob", "kyrre", "debian", "root"}
    for name, hashed in hashes.items():
        assert users[name]["hash"] == hashed, name
    assert users["kyrre"]["hash"] == "147/Y.NtB9p7w", "crypt: marks a DES hash as a hash"
    assert sha512_crypt.verify("wonderland", users["alice"]["hash"]), "plain text was hashed"
    assert sha512_crypt.verify("13charsplain!", users["debian"]["hash"])
    assert users["debian"]["uid"] == 1001, "the existing user was kept, not recreated"
    assert users["nagios"]["hash"] == "!", "a user with keys only stays without a password"
    for name in ("root", "alice", "nagios"):
        assert "nagios@monitor" in users[name]["keys"], name
    files = result["files"]
    notes = {"owner": "alice:alice", "mode": "0600", "text": "for alice"}
    assert files["/home/alice/notes"] == notes
    assert files["/srv/shared"]["owner"] == "root:bob"
    assert files["/etc/motd"] == {"owner": "root:root", "mode": "0644", "text": "accounts host"}


def test_control_passwd_under_users_misses_existing_users(tmp_path: Path) -> None:
    """Without chpasswd (``passwd`` under ``users``), root and debian keep their old state."""
    users = apply(tmp_path, "passwd-in-users")["users"]
    assert users["alice"]["hash"] == seed_hashes()["alice"], "a new user does get passwd"
    assert users["debian"]["hash"] == OLD_DEBIAN_HASH
    assert users["root"]["hash"] != seed_hashes()["root"]


def test_control_undeferred_files_fail_before_their_owner_exists(tmp_path: Path) -> None:
    result = apply(tmp_path, "undeferred-files")
    assert "alice" in result["errors"]["write_files"]
    assert result["files"]["/home/alice/notes"]["owner"] == "root:root"

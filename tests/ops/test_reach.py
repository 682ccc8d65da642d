"""Reaching guests over SSH: the login user, the address, the config and command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.errors import NotFoundError
from corral.model import Host
from corral.ops.reach import SshTarget, first_ipv4, login_user, ssh_command, ssh_config


def _host(**fields: object) -> Host:
    return Host.model_validate({"name": "web", "service_host": "local", **fields})


def test_the_login_user_is_roots_when_root_has_a_key_else_the_first_with_one() -> None:
    assert login_user(_host()) == "root"
    assert login_user(_host(users={"alice": "x", "bob": "y"})) == "alice"
    assert login_user(_host(users={"alice": "x"}, ssh_keys={"bob": ["ssh-ed25519 K"]})) == "bob"
    assert login_user(_host(ssh_keys={"bob": ["k"], "root": ["k"]})) == "root"
    assert login_user(_host(ssh_keys={"bob": []}, users={"carol": "x"})) == "carol"


def test_the_address_is_the_first_ipv4_one() -> None:
    assert first_ipv4(["fe80::1/64", "10.1.2.3/24", "10.9.9.9"]) == "10.1.2.3"
    assert first_ipv4(["10.9.9.9"]) == "10.9.9.9"
    assert first_ipv4(["fe80::1", "not an address"]) is None
    assert first_ipv4([]) is None


UP = SshTarget("lab", "web", "10.1.2.3", "alice", "running", "local")
DOWN = SshTarget("lab", "db", None, "root", "shut off", "local")


def test_a_config_block_per_guest_and_a_comment_for_one_without_an_address() -> None:
    text = ssh_config([UP, DOWN], Path("/keys/lab"))
    assert text == (
        "Host lab.web\n    HostName 10.1.2.3\n    User alice\n    HostKeyAlias lab.web\n"
        "    StrictHostKeyChecking accept-new\n    IdentityFile /keys/lab\n"
        "    IdentitiesOnly yes\n\n# lab.db: no address known (shut off)\n")
    assert "IdentityFile" not in ssh_config([UP])


def test_the_ssh_command_line() -> None:
    assert ssh_command(UP, None, []) == [
        "ssh", "-o", "HostKeyAlias=lab.web", "-o", "StrictHostKeyChecking=accept-new",
        "-l", "alice", "10.1.2.3"]
    assert ssh_command(UP, Path("/k"), ["uname", "-a"])[-7:] == [
        "-i", "/k", "-o", "IdentitiesOnly=yes", "10.1.2.3", "--", "uname", "-a"][-7:]
    with pytest.raises(NotFoundError, match=r"lab.db has no known address \(shut off\)"):
        ssh_command(DOWN, None, [])

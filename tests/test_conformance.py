"""The MLN article's listings (examples/) resolve to what the article describes.

The JSON contract of docs/architecture.md (``corral show --json``) is checked key by key:
``project``, ``hosts.NAME.{virt, template, memory_mib, vcpus, service_host,
interfaces[{name, switch, address, netmask, gateway, mac}], users}``, ``switches``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from passlib.hash import sha512_crypt

from corral.errors import SourceErrors
from corral.images.seed import seed_documents
from corral.model.load import load_project
from corral.plugins.apache import CONFIG_PATH

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MAC = re.compile(r"52:54:00(:[0-9a-f]{2}){3}")
CONTRACT_HOST_KEYS = {
    "virt",
    "template",
    "memory_mib",
    "vcpus",
    "service_host",
    "interfaces",
    "users",
}


def contract(name: str) -> dict:
    return load_project(EXAMPLES / name).contract()


def nic(name: str, switch: str | None, address: str | None, netmask=None, gateway=None) -> dict:
    return {
        "name": name,
        "switch": switch,
        "address": address,
        "netmask": netmask,
        "gateway": gateway,
    }


def without_macs(host: dict) -> list[dict]:
    for interface in host["interfaces"]:
        assert MAC.fullmatch(interface["mac"]), interface["mac"]
    return [{k: v for k, v in i.items() if k != "mac"} for i in host["interfaces"]]


def essentials(host: dict) -> dict:
    return {
        key: host[key]
        for key in ("virt", "template", "memory_mib", "vcpus", "service_host", "users")
    }


def test_listing1_ldaptest() -> None:
    data = contract("ldaptest.mln")
    assert data["project"] == "ldaptest"
    client, server = data["hosts"]["ldapclient"], data["hosts"]["ldapserver"]
    assert essentials(client) == {
        "virt": "xen",
        "template": "ubuntu-client.ext3",
        "memory_mib": 128,
        "vcpus": 1,
        "service_host": "local",
        "users": {},
    }
    assert (client["size_mib"], client["nameservers"]) == (2048, ["10.0.0.15"])
    assert without_macs(client) == [nic("eth0", "LDAPlan", "dhcp")]
    assert essentials(server) == {
        "virt": "xen",
        "template": "ubuntu-ldap.ext3",
        "memory_mib": 256,
        "vcpus": 1,
        "service_host": "local",
        "users": {"kyrre": "147/Y.NtB9p7w"},
    }
    assert (server["lvm"], server["size_mib"]) == (True, 2048)
    assert without_macs(server) == [nic("eth0", "LDAPlan", "10.0.0.2", "255.255.255.0", "10.0.0.1")]
    assert list(data["switches"]) == ["LDAPlan"]
    assert data["switches"]["LDAPlan"]["mode"] == "isolated"


def test_listing1_password_is_plain_text_unless_marked() -> None:
    """MLN's ``kyrre 147/Y.NtB9p7w`` is a DES hash; Corral takes it as plain text.

    13 characters of the DES alphabet are also a possible plain password, so
    only ``$ID$`` hashes count as hashes by themselves (docs/guest-configuration.md):
    the listing stays valid as written and kyrre's password is that text,
    hashed with SHA-512 crypt; ``crypt:147/Y.NtB9p7w`` keeps the MLN meaning.
    """
    server = load_project(EXAMPLES / "ldaptest.mln").hosts["ldapserver"]
    config = yaml.safe_load(seed_documents(server, "ldaptest").user_data)
    (entry,) = config["chpasswd"]["users"]
    assert entry["name"] == "kyrre" and entry["type"] == "hash"
    assert sha512_crypt.verify("147/Y.NtB9p7w", entry["password"])
    marked = server.model_copy(update={"users": {"kyrre": "crypt:147/Y.NtB9p7w"}})
    config = yaml.safe_load(seed_documents(marked, "ldaptest").user_data)
    assert config["chpasswd"]["users"][0]["password"] == "147/Y.NtB9p7w"


def test_listing2_italy_superclass() -> None:
    data = contract("italy.mln")
    assert data["project"] == "italy"
    assert list(data["hosts"]) == ["uno", "due", "tre"]
    for name, memory in (("uno", 128), ("due", 128), ("tre", 256)):
        host = data["hosts"][name]
        assert set(host) >= CONTRACT_HOST_KEYS
        assert essentials(host) == {
            "virt": "vmware",
            "template": "rhel5.vmdk",
            "memory_mib": memory,
            "vcpus": 1,
            "service_host": "milano",
            "users": {},
        }
        assert without_macs(host) == [nic("eth0", "lan", "dhcp")]
    macs = {data["hosts"][n]["interfaces"][0]["mac"] for n in data["hosts"]}
    assert len(macs) == 3
    assert data["switches"]["lan"]["virt"] == "vmware"


def test_listing2_yaml_twin_resolves_to_the_same_contract() -> None:
    assert contract("italy.yaml") == contract("italy.mln")


def test_listings4_and_5_oscourse_group_project() -> None:
    data = contract("os03.mln")
    assert data["project"] == "os03"
    ubuntu, win = data["hosts"]["ubuntu"], data["hosts"]["win"]
    assert essentials(ubuntu) == {
        "virt": "xen",
        "template": "os_linux_1.ext3",
        "memory_mib": 128,
        "vcpus": 1,
        "service_host": "local",
        "users": {"osuser03": "unique-value-1"},
    }
    assert ubuntu["root_passwd"] == "unique-value-2"
    assert without_macs(ubuntu) == [
        nic("eth0", "lan", "10.0.0.1", "255.255.255.0"),
        nic("eth1", None, "dhcp"),
    ]
    assert essentials(win) == {
        "virt": "xen",
        "template": "winXP.template",
        "memory_mib": 256,
        "vcpus": 1,
        "service_host": "local",
        "users": {"osuser03": "unique-value-1"},
    }
    assert (win["hvm"], win["vncdisplay"], win["vncpasswd"]) == (True, 300, "unique-value-3")
    assert without_macs(win) == [nic("eth0", "lan", None, "255.255.255.0")]


def test_listing6_bioinfo_virtual_cluster() -> None:
    data = contract("bioinfo.mln")
    hosts = data["hosts"]
    assert list(hosts) == [f"cluster-node{i}" for i in range(1, 37)]
    servers = [f"bio{i}" for i in range(1, 7)]
    for index, (name, host) in enumerate(hosts.items()):
        assert (host["template"], host["memory_mib"], host["free_space_mib"]) == (
            "ubuntu_mpi.ext3",
            312,
            1024,
        ), name
        assert host["service_host"] == servers[index % 6]
        assert without_macs(host) == [
            nic("eth0", None, f"128.39.73.{150 + index}", "255.255.255.0", "128.39.73.1")
        ]
    assert len({h["interfaces"][0]["mac"] for h in hosts.values()}) == 36


def test_listing6_as_printed_names_its_unreachable_gateway(tmp_path: Path) -> None:
    """The article's gateway lies outside the nodes' /24; every node's error points at it."""
    text = (EXAMPLES / "bioinfo.mln").read_text().replace("128.39.73.1\n", "192.168.33.211\n")
    (tmp_path / "servers.txt").write_text((EXAMPLES / "servers.txt").read_text())
    path = tmp_path / "bioinfo.mln"
    path.write_text(text)
    with pytest.raises(SourceErrors) as caught:
        load_project(path)
    line = text.splitlines().index("        gateway $gateway_ip") + 1
    messages = {f"{d.span.line}:{d.span.column}: {d.message}" for d in caught.value.diagnostics}
    assert messages == {
        f"{line}:17: gateway 192.168.33.211 is outside interface 'eth0''s subnet 128.39.73.0/24"
    }


def test_listing7_webserv_plugins() -> None:
    data = contract("webserv.mln")
    key = (EXAMPLES / "keys" / "nagios.pub").read_text().strip()
    for name in ("web14", "web15"):
        host = data["hosts"][name]
        assert host["ssh_keys"] == {"nagios": [key]}
        assert host["plugins"]["apache"]["doc_root"] == "/var/www"
    web14 = {f["path"]: f["content"] for f in data["hosts"]["web14"]["files"]}
    assert web14[CONFIG_PATH].splitlines()[1:] == ["DocumentRoot /var/www", "MaxRequestWorkers 300"]
    web15 = {f["path"]: f["content"] for f in data["hosts"]["web15"]["files"]}
    assert web15[CONFIG_PATH].splitlines()[1:] == ["DocumentRoot /var/www"]


@pytest.mark.parametrize(
    "name", ["ldaptest.mln", "italy.mln", "os03.mln", "bioinfo.mln", "webserv.mln", "italy.yaml"]
)
def test_the_same_file_always_gives_the_same_model(name: str) -> None:
    assert contract(name) == contract(name)

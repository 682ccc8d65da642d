"""Seed documents against golden files, and the ISO read back with pycdlib.

Regenerate the golden files after an intended change with
``CORRAL_REGEN_GOLDEN=1 .venv/bin/pytest tests/images/test_seed.py``.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pycdlib
import pytest
import yaml

from corral.images.seed import build_seed, instance_id, seed_documents
from corral.model.project import FileSpec, Host, Interface

GOLDEN = Path(__file__).parent / "golden"
PROJECT = "ldaptest"


def sample_host(**changes: object) -> Host:
    """The MLN article's ``ldapserver``, with every seed feature in use."""
    fields: dict[str, object] = dict(
        name="ldapserver",
        nameservers=("10.0.0.15",),
        interfaces=(
            Interface(
                name="eth0",
                switch="LDAPlan",
                address="10.0.0.2",
                netmask="255.255.255.0",
                gateway="10.0.0.1",
                mac="52:54:00:12:34:56",
            ),
            Interface(name="eth1", switch="dhcplan", address="dhcp", mac="52:54:00:AB:CD:EF"),
            Interface(name="eth2", switch="spare", mac="52:54:00:ab:cd:e0"),
        ),
        users={"kyrre": "crypt:147/Y.NtB9p7w"},
        root_passwd="$6$corral$Vf5qs9bEtbYJ.F5kq1Ikr5PUr6ET9X0Pj0y5nqPIXDfHyrhhT1iDzOAWmJXlEWB7P5xCuiYbTR4q0sBZmDzc51",
        ssh_keys={"kyrre": ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI kyrre@lab",)},
        files=(
            FileSpec(path="/etc/motd", content="LDAP server\nmanaged by corral\n"),
            FileSpec(path="/home/kyrre/notes", content="ldap\n", owner="kyrre:kyrre"),
        ),
        packages=("slapd", "ldap-utils"),
        runcmd=("echo configured: $(hostname)", "ip -4 addr show dev eth0"),
    )
    fields.update(changes)
    return Host(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["meta-data", "user-data", "network-config"])
def test_documents_match_golden(name: str) -> None:
    text = seed_documents(sample_host(), PROJECT).by_name()[name]
    golden = GOLDEN / f"ldapserver.{name}"
    if os.environ.get("CORRAL_REGEN_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_documents_are_valid_yaml_with_cloud_init_keys() -> None:
    docs = seed_documents(sample_host(), PROJECT)
    assert docs.user_data.startswith("#cloud-config\n")
    user = yaml.safe_load(docs.user_data)
    assert user["final_message"] == "corral-ready ldapserver"
    assert user["users"] == [{
        "name": "kyrre",
        "lock_passwd": False,
        "ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI kyrre@lab"],
    }]
    assert user["chpasswd"] == {
        "expire": False,
        "users": [
            {"name": "kyrre", "password": "147/Y.NtB9p7w", "type": "hash"},
            {"name": "root", "password": sample_host().root_passwd, "type": "hash"},
        ],
    }, "passwords go through chpasswd, which also reaches users that already exist"
    motd, notes = user["write_files"]
    assert "defer" not in motd and notes["defer"] is True, "kyrre's file waits for kyrre"
    net = yaml.safe_load(docs.network_config)
    assert set(net["ethernets"]) == {"eth0", "eth1"}, "an interface without address is left alone"
    assert net["ethernets"]["eth1"]["match"] == {"macaddress": "52:54:00:ab:cd:ef"}
    assert net["ethernets"]["eth0"]["addresses"] == ["10.0.0.2/24"]
    assert net["ethernets"]["eth0"]["gateway4"] == "10.0.0.1"


def test_instance_id_follows_the_model() -> None:
    host = sample_host()
    assert instance_id(host, PROJECT) == instance_id(sample_host(), PROJECT)
    changed = sample_host(runcmd=("echo other",))
    assert instance_id(changed, PROJECT) != instance_id(host, PROJECT)
    assert instance_id(host, PROJECT).startswith("ldaptest-ldapserver-")


def test_static_address_without_netmask_gets_a_prefix() -> None:
    iface = Interface(name="eth0", address="192.168.1.5", mac="52:54:00:00:00:01")
    net = yaml.safe_load(seed_documents(sample_host(interfaces=(iface,)), PROJECT).network_config)
    assert net["ethernets"]["eth0"]["addresses"] == ["192.168.1.5/24"]
    assert "gateway4" not in net["ethernets"]["eth0"]


def test_minimal_host_has_no_empty_sections() -> None:
    user = yaml.safe_load(seed_documents(Host(name="bare"), "p").user_data)
    assert user == {
        "hostname": "bare",
        "preserve_hostname": False,
        "final_message": "corral-ready bare",
    }


def test_iso_reads_back_with_volume_id_and_three_files() -> None:
    host = sample_host()
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(build_seed(host, PROJECT)))
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "cidata"
        expected = seed_documents(host, PROJECT).by_name()
        for name, text in expected.items():
            for where in ({"rr_path": f"/{name}"}, {"joliet_path": f"/{name}"}):
                out = io.BytesIO()
                iso.get_file_from_iso_fp(out, **where)
                assert out.getvalue().decode() == text
        names = sorted(
            child.rock_ridge.name().decode()
            for child in iso.list_children(rr_path="/")
            if child.rock_ridge is not None and not (child.is_dot() or child.is_dotdot())
        )
        assert names == ["meta-data", "network-config", "user-data"]
    finally:
        iso.close()


def test_building_a_seed_takes_milliseconds() -> None:
    host = sample_host()
    build_seed(host, PROJECT)
    start = time.perf_counter()
    for _ in range(20):
        build_seed(host, PROJECT)
    assert (time.perf_counter() - start) / 20 < 0.05


def test_packages_the_template_was_built_with_are_not_asked_of_cloud_init() -> None:
    """A template's own packages are there at first boot; asking cloud-init for
    them would make it reach for a mirror the lab may not have."""
    host = sample_host()
    some = yaml.safe_load(seed_documents(host, PROJECT, baked=("slapd", "htop")).user_data)
    assert some["packages"] == ["ldap-utils"]
    every = yaml.safe_load(seed_documents(host, PROJECT, baked=host.packages).user_data)
    assert "packages" not in every
    # The identity stays: which packages the template holds is not the host's model.
    assert seed_documents(host, PROJECT, baked=host.packages).meta_data == seed_documents(
        host, PROJECT).meta_data

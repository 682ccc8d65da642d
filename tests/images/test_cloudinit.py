"""Every seed of the corpus through Debian's cloud-init 22.4: schema, network renderers, CLI.

The corpus (``cloudinit_corpus.py``) is every host of ``corpus/features.corral``
and of the example projects. One run of ``cloudinit_driver.py`` (a few
seconds for ~60 seeds, where each ``cloud-init`` command alone costs ~0.5 s)
validates each user-data the way ``cloud-init schema --config-file`` does and
renders each network-config with the ENI, netplan, networkd and sysconfig
renderers the way ``cloud-init devel net-convert`` does; the last tests run
those two commands themselves on one seed and check they agree with the driver.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudinit_corpus import Seed, corpus, needs_cloud_init, run_driver, write_seeds

from corral.model.project import Host, Interface

pytestmark = needs_cloud_init

SEEDS = corpus()
BY_NAME = {seed.name: seed for seed in SEEDS}


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("seeds")
    write_seeds(SEEDS, directory)
    return directory


@pytest.fixture(scope="module")
def verdicts(seed_dir: Path) -> dict[str, Any]:
    return run_driver(seed_dir)


def test_corpus_covers_every_seed_feature() -> None:
    """The features the corpus exists for are really in it (a guard against edits)."""
    hosts = [seed.host for seed in SEEDS]
    nics = [len([i for i in h.interfaces if i.address]) for h in hosts]
    assert 0 in nics and max(nics) >= 3
    assert any(i.address == "dhcp" for h in hosts for i in h.interfaces)
    assert any(i.gateway and i.is_static for h in hosts for i in h.interfaces)
    assert any(h.nameservers for h in hosts)
    assert any(h.root_passwd for h in hosts) and any(h.ssh_keys for h in hosts)
    assert any(f.owner != "root:root" for h in hosts for f in h.files)
    assert any(h.packages for h in hosts)
    assert any(h.virt.value == "lxc" for h in hosts)  # the container's own output key
    assert any("'a;b'" in command for h in hosts for command in h.runcmd)
    assert any(f.path.startswith("/etc/apache2/") for h in hosts for f in h.files)
    users = BY_NAME["features.corral.accounts"].host.users
    assert users["kyrre"].startswith("crypt:") and users["bob"].startswith("$6$")


def test_every_user_data_is_valid_for_cloud_init_schema(verdicts: dict[str, Any]) -> None:
    problems = {name: v["schema"] for name, v in verdicts.items() if v["schema"]}
    assert not problems, "\n\n".join(f"{name}:\n{text}" for name, text in problems.items())
    assert set(verdicts) == set(BY_NAME)


def test_every_network_config_renders_with_every_renderer(verdicts: dict[str, Any]) -> None:
    errors = {name: v["render_errors"] for name, v in verdicts.items() if v["render_errors"]}
    assert not errors
    for name, verdict in verdicts.items():
        host = BY_NAME[name].host
        rendered = verdict["rendered"]
        for check in (_check_eni, _check_netplan, _check_networkd, _check_sysconfig):
            check(host, rendered, name)


def _configured(host: Host) -> list[Interface]:
    return [iface for iface in host.interfaces if iface.address is not None]


def _cidr(iface: Interface) -> ipaddress.IPv4Interface:
    return ipaddress.IPv4Interface(f"{iface.address}/{iface.netmask or 24}")


def _check_eni(host: Host, rendered: dict, name: str) -> None:
    text = rendered["eni"]["/etc/network/interfaces.d/50-cloud-init"]
    assert "route add" not in text, f"{name}: default route must be ENI's own gateway line"
    stanza_re = re.compile(r"iface (\S+) inet[^\n]*(\n    [^\n]*)*")
    stanzas = {m.group(1): m.group(0) + "\n" for m in stanza_re.finditer(text)}
    assert set(stanzas) == {"lo"} | {i.name for i in _configured(host)}, name
    for iface in _configured(host):
        stanza = stanzas[iface.name]
        if iface.is_static:
            assert f"iface {iface.name} inet static" in stanza
            assert f"\n    address {_cidr(iface).with_prefixlen}\n" in stanza, name
            assert (f"\n    gateway {iface.gateway}\n" in stanza) == bool(iface.gateway), name
            if host.nameservers:
                assert f"\n    dns-nameservers {' '.join(host.nameservers)}\n" in stanza
        else:
            assert f"iface {iface.name} inet dhcp" in stanza, name


def _check_netplan(host: Host, rendered: dict, name: str) -> None:
    plan = yaml.safe_load(rendered["netplan"]["/etc/netplan/50-cloud-init.yaml"])["network"]
    ethernets = plan["ethernets"]
    assert set(ethernets) == {i.name for i in _configured(host)}, name
    for iface in _configured(host):
        entry = ethernets[iface.name]
        assert entry["match"]["macaddress"] == iface.mac and entry["set-name"] == iface.name
        if iface.is_static:
            assert entry["addresses"] == [_cidr(iface).with_prefixlen], name
            assert entry.get("gateway4") == iface.gateway and "routes" not in entry, name
        else:
            assert entry["dhcp4"] is True, name
        if host.nameservers:
            assert entry["nameservers"]["addresses"] == list(host.nameservers), name


def _check_networkd(host: Host, rendered: dict, name: str) -> None:
    files = rendered["networkd"]
    expected = {f"/etc/systemd/network/10-cloud-init-{i.name}.network" for i in _configured(host)}
    assert set(files) == expected, name
    for iface in _configured(host):
        unit = files[f"/etc/systemd/network/10-cloud-init-{iface.name}.network"]
        assert f"MACAddress={iface.mac}\n" in unit
        if iface.is_static:
            assert f"Address={_cidr(iface).with_prefixlen}\n" in unit, name
            assert ("[Route]\nGateway=" + str(iface.gateway) + "\n" in unit) == bool(iface.gateway)
        else:
            assert "DHCP=ipv4\n" in unit, name
        if host.nameservers:
            assert f"DNS={' '.join(host.nameservers)}\n" in unit, name


def _check_sysconfig(host: Host, rendered: dict, name: str) -> None:
    files = rendered["sysconfig"]
    scripts = {
        path.rsplit("ifcfg-", 1)[1]: text for path, text in files.items() if "/ifcfg-" in path
    }
    assert set(scripts) == {i.name for i in _configured(host)}, name
    for iface in _configured(host):
        script = scripts[iface.name]
        if iface.is_static:
            cidr = _cidr(iface)
            assert "BOOTPROTO=none\n" in script and f"IPADDR={cidr.ip}\n" in script, name
            assert f"NETMASK={cidr.netmask}\n" in script, name
            assert (f"GATEWAY={iface.gateway}\n" in script) == bool(iface.gateway), name
            for n, server in enumerate(host.nameservers, 1):
                assert f"DNS{n}={server}\n" in script, name
        else:
            assert "BOOTPROTO=dhcp\n" in script, name


# --- the commands themselves ---------------------------------------------------


def test_cloud_init_schema_command_agrees(seed_dir: Path, tmp_path: Path) -> None:
    user_data = seed_dir / "features.corral.accounts" / "user-data"
    done = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(user_data)], capture_output=True, text=True
    )
    assert done.returncode == 0 and "Valid cloud-config" in done.stdout, done.stderr
    broken = tmp_path / "broken"
    text = user_data.read_text().replace("type: hash", "type: crypt", 1)
    broken.write_text(text)
    done = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(broken)], capture_output=True, text=True
    )
    assert done.returncode != 0 and "chpasswd.users.0" in done.stderr
    # 22.4's --annotate fails on errors inside list items; it marks a key's line
    text = user_data.read_text().replace("preserve_hostname: false", "preserve_hostname: 3")
    broken.write_text(text)
    annotated = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(broken), "--annotate"],
        capture_output=True,
        text=True,
    ).stdout
    assert "preserve_hostname: 3\t\t# E1" in annotated and "# E1: 3 is not of type" in annotated


@pytest.mark.parametrize(
    ("kind", "distro"), [("eni", "debian"), ("networkd", "debian"), ("sysconfig", "rhel")]
)
def test_net_convert_command_agrees(
    seed_dir: Path, verdicts: dict[str, Any], tmp_path: Path, kind: str, distro: str
) -> None:
    name = "features.corral.router"
    subprocess.run(
        ["unshare", "-n", "cloud-init", "devel", "net-convert",
         "-p", str(seed_dir / name / "network-config"), "-k", "yaml",
         "-O", kind, "-D", distro, "-d", str(tmp_path)],
        capture_output=True, check=True,
    )  # fmt: skip
    files = {
        "/" + str(p.relative_to(tmp_path)): p.read_text()
        for p in sorted(tmp_path.rglob("*"))
        if p.is_file()
    }
    assert files == verdicts[name]["rendered"][kind]


def test_runcmd_reaches_cloud_init_as_command_lines(verdicts: dict[str, Any]) -> None:
    """cc_runcmd's script holds each runcmd entry as one line, unchanged."""
    seed: Seed = BY_NAME["features.corral.shell"]
    script = verdicts[seed.name]["runcmd"]
    assert script == "#!/bin/sh\n" + "".join(f"{line}\n" for line in seed.host.runcmd)

"""The tiny template: its parts, and real boots under QEMU/TCG with a seed from seed.py.

The boots are the round trip of the seed contract: seed.py writes the
documents, the guest's flatyaml.awk and boot script read and apply them.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest_tiny import QemuGuest, tiny_or_skip
from passlib.hash import des_crypt

from corral.images.qemuimg import info
from corral.images.seed import build_seed, seed_documents
from corral.images.tiny_builder import (
    DEFAULT_KERNEL_CACHE,
    WANTED_MODULES,
    CpioWriter,
    TinyImage,
    kernel_tree,
    resolve_modules,
)
from corral.model.project import FileSpec, Host, Interface

FLATYAML = Path(__file__).parents[2] / "corral/images/tiny/flatyaml.awk"
needs_kernel = pytest.mark.skipif(
    not (DEFAULT_KERNEL_CACHE / "ready").exists(),
    reason="no Debian kernel in the cache (run scripts/fetch-kernel.sh)",
)
needs_busybox = pytest.mark.skipif(shutil.which("busybox") is None, reason="no busybox")


@pytest.fixture(scope="session")
def tiny_image() -> TinyImage:
    return tiny_or_skip()


def awk_flatten(text: str, *mode: str) -> str:
    args = [arg for m in mode for arg in ("-v", m)]
    done = subprocess.run(
        ["busybox", "awk", *args, "-f", str(FLATYAML)],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def python_flatten(node: Any, path: str = "") -> list[str]:
    """What flatyaml.awk must print, computed from PyYAML's own reading."""
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        text = {True: "true", False: "false"}.get(node, node) if isinstance(node, bool) else node
        return [f"{path}={text}"]
    lines = []
    for key, value in items:
        lines += python_flatten(value, f"{path}.{key}" if path else str(key))
    return lines


TRICKY = Host(
    name="tricky",
    nameservers=("10.1.0.1", "10.1.0.2"),
    interfaces=(
        Interface(name="eth0", address="10.1.0.9", netmask="255.255.0.0", mac="52:54:00:00:00:09"),
        Interface(name="wan", address="dhcp", mac="52:54:00:AA:BB:CC"),
    ),
    users={"ann": "$6$salt$hash", "bob": "ab01FAX.bLb7s"},
    ssh_keys={"ann": ("ssh-ed25519 AAAA ann@a", "ssh-rsa BBBB ann@b"), "root": ("ssh-rsa C r",)},
    files=(FileSpec(path="/etc/x.conf", content="a: b\n# c\n", permissions="0600"),),
    runcmd=(
        "echo 'single' \"double\" # hash",
        "printf '%s\\n' a:b key: value",
        "echo it's -- [brackets] {braces} & amp",
        "echo tab\there",
        "- leading dash",
        "true",
        "@at *star",
    ),
    packages=("vim",),
)


@needs_busybox
@pytest.mark.parametrize("document", ["meta-data", "user-data", "network-config"])
def test_guest_parser_reads_exactly_what_seed_writes(document: str) -> None:
    text = seed_documents(TRICKY, "lab").by_name()[document]
    expected = python_flatten(yaml.safe_load(text))
    assert awk_flatten(text).splitlines() == expected


@needs_busybox
def test_guest_parser_modes() -> None:
    docs = seed_documents(TRICKY, "lab")
    assert awk_flatten(docs.network_config, "keys=ethernets").split() == ["eth0", "wan"]
    assert awk_flatten(docs.network_config, "get=ethernets.wan.match.macaddress") == (
        "52:54:00:aa:bb:cc\n"
    )
    keys = awk_flatten(docs.user_data, r"each=users\.0\.ssh_authorized_keys\.[0-9]+")
    assert keys.splitlines() == ["ssh-ed25519 AAAA ann@a", "ssh-rsa BBBB ann@b"]
    assert awk_flatten(docs.user_data, "get=runcmd.3") == "echo tab\there\n"
    assert awk_flatten(docs.user_data, "get=no.such.path") == ""


@needs_kernel
def test_modules_come_after_their_dependencies() -> None:
    modules = resolve_modules(kernel_tree(DEFAULT_KERNEL_CACHE).modules, WANTED_MODULES)
    names = [module.name for module in modules]
    assert set(WANTED_MODULES) <= set(names)
    assert len(names) == len(set(names))
    for position, module in enumerate(modules):
        for dependency in module.depends:
            assert names.index(dependency) < position, f"{dependency} after {module.name}"
    assert {"virtio_ring", "jbd2", "mbcache", "crc16", "net_failover"} <= set(names)


@needs_kernel
def test_missing_module_is_a_clear_error() -> None:
    from corral.errors import NotFoundError

    with pytest.raises(NotFoundError, match="has no module no_such_driver"):
        resolve_modules(kernel_tree(DEFAULT_KERNEL_CACHE).modules, ["no_such_driver"])


def test_cpio_writer_output_is_read_by_cpio(tmp_path: Path) -> None:
    if shutil.which("cpio") is None:
        pytest.skip("cpio is not installed")
    archive = CpioWriter()
    archive.directory("bin")
    archive.file("bin/hello", b"hello\n", mode=0o755)
    archive.symlink("bin/hi", "hello")
    archive.char_device("console", 5, 1)
    data = archive.finish()
    listing = subprocess.run(
        ["cpio", "-t", "-v"], input=data, capture_output=True, check=True
    ).stdout.decode()
    lines = listing.splitlines()
    assert [line.split()[-1] for line in lines if "->" not in line] == [
        "bin",
        "bin/hello",
        "console",
    ]
    assert any(line.endswith("bin/hi -> hello") for line in lines)
    assert any(line.startswith("crw-------") for line in lines)
    subprocess.run(["cpio", "-i", "-d", "--quiet"], input=data, cwd=tmp_path, check=True)
    assert (tmp_path / "bin/hello").read_bytes() == b"hello\n"


@needs_kernel
def test_built_image_parts(tiny_image: TinyImage) -> None:
    disk = info(tiny_image.disk)
    assert disk.format == "qcow2" and disk.backing_file is None
    assert 64 << 20 <= disk.virtual_size <= 128 << 20
    listing = subprocess.run(
        ["cpio", "-t"], input=gzip.decompress(tiny_image.initrd.read_bytes()),
        capture_output=True, check=True,
    ).stdout.decode().split()  # fmt: skip
    assert {"init", "bin/busybox", "dev/console", "lib/modules/ext4.ko"} <= set(listing)
    assert "lib/modules/virtio_balloon.ko" in listing
    assert "root=/dev/vda" in tiny_image.cmdline and "console=ttyS0" in tiny_image.cmdline


# --- real boots -----------------------------------------------------------

STATIC = Host(
    name="alpha",
    nameservers=("10.0.0.15",),
    interfaces=(
        Interface(
            name="eth0",
            address="10.0.0.2",
            netmask="255.255.255.0",
            gateway="10.0.0.1",
            mac="52:54:00:12:34:56",
        ),
    ),
    users={"kyrre": "crypt:147/Y.NtB9p7w"},
    root_passwd="crypt:" + des_crypt.using(salt="co").hash("corral"),
    ssh_keys={"kyrre": ("ssh-ed25519 AAAAC3Nza kyrre@lab",)},
    files=(
        FileSpec(path="/etc/motd", content="welcome to alpha\n"),
        FileSpec(path="/home/kyrre/notes", content="for kyrre\n", owner="kyrre:kyrre"),
    ),
    runcmd=(
        "echo runcmd-ran-on $(hostname)",
        "ip -4 addr show dev eth0",
        "ip -4 route",
        "cat /etc/resolv.conf /etc/motd /home/kyrre/.ssh/authorized_keys",
        "grep kyrre /etc/shadow",
        "echo notes-owner $(stat -c %U:%G /home/kyrre/notes) $(cat /home/kyrre/notes)",
    ),
)


@pytest.mark.libvirt
@needs_kernel
def test_static_guest_is_individualised(tiny_image: TinyImage, tmp_path: Path) -> None:
    seed = build_seed(STATIC, "lab")
    with QemuGuest(tiny_image, tmp_path, seed, nics=(("52:54:00:12:34:56", "user"),)) as vm:
        ready = vm.wait_for(r"^corral-ready alpha$")
        boot = vm.output()[: ready.end()]
        assert "runcmd-ran-on alpha" in boot
        assert "inet 10.0.0.2/24" in boot
        assert "default via 10.0.0.1 dev eth0" in boot
        assert "nameserver 10.0.0.15" in boot
        assert "welcome to alpha" in boot
        assert "ssh-ed25519 AAAAC3Nza kyrre@lab" in boot
        assert "kyrre:147/Y.NtB9p7w:" in boot
        assert "notes-owner kyrre:kyrre for kyrre" in boot, "a deferred file, after its owner"
        # root has a password from the seed: the console asks for a login, and it works
        vm.wait_for(r"alpha login: ", after=ready.end())
        vm.type("root\n")
        vm.wait_for(r"Password: ", after=ready.end())
        mark = len(vm.output())
        vm.type("corral\n")
        vm.type("echo logged-in-as-$(id -un)\n")
        vm.wait_for(r"^logged-in-as-root", after=mark)


DHCP = Host(
    name="beta",
    interfaces=(
        Interface(name="lan0", address="dhcp", mac="52:54:00:be:e7:a0"),
        Interface(name="spare", mac="52:54:00:be:e7:a1"),
    ),
    runcmd=("echo first-boot-of $(hostname)", "ip -4 addr show dev lan0"),
)


@pytest.mark.libvirt
@needs_kernel
def test_dhcp_guest_runs_runcmd_once_per_instance(tiny_image: TinyImage, tmp_path: Path) -> None:
    nics = (("52:54:00:be:e7:a1", "user"), ("52:54:00:be:e7:a0", "user"))
    with QemuGuest(tiny_image, tmp_path, build_seed(DHCP, "lab"), nics=nics) as vm:
        ready = vm.wait_for(r"^corral-ready beta$")
        boot = vm.output()[: ready.end()]
        assert "first-boot-of beta" in boot
        # the interface was found by its MAC (the second NIC) and renamed
        assert "lan0: <BROADCAST" in boot and "inet 10.0.2.15/24" in boot
        # no root password: the console is a shell
        vm.type("\necho $((6 * 7))-answer\n")
        vm.wait_for(r"^42-answer", after=ready.end())
    with QemuGuest(tiny_image, tmp_path, build_seed(DHCP, "lab"), nics=nics) as vm:
        ready = vm.wait_for(r"^corral-ready beta$")
        assert "first-boot-of" not in vm.output(), "runcmd ran again for the same instance"
    changed = DHCP.model_copy(update={"memory_mib": 96})
    with QemuGuest(tiny_image, tmp_path, build_seed(changed, "lab"), nics=nics) as vm:
        vm.wait_for(r"^corral-ready beta$")
        assert "first-boot-of beta" in vm.output(), "a new instance id runs runcmd again"


@pytest.mark.libvirt
@needs_kernel
def test_power_button_shuts_down_and_data_survives(tiny_image: TinyImage, tmp_path: Path) -> None:
    writer = Host(name="gamma", runcmd=("echo kept-across-boots > /root/kept",))
    with QemuGuest(tiny_image, tmp_path, build_seed(writer, "lab")) as vm:
        vm.wait_for(r"^corral-ready gamma$")
        assert vm.shut_down(60) == 0
    reader = writer.model_copy(update={"runcmd": ("cat /root/kept",)})
    with QemuGuest(tiny_image, tmp_path, build_seed(reader, "lab")) as vm:
        ready = vm.wait_for(r"^corral-ready gamma$")
        assert "kept-across-boots" in vm.output()[: ready.end()]

"""The template registry on real images made with the real qemu-img."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from corral.errors import BackendError, ConfigError, ConflictError, NotFoundError
from corral.images import Template, TemplateRegistry, qemuimg

MIB = 1 << 20


def make_image(path: Path, fmt: str, size: str = "4M") -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), size], check=True)
    return path


def write_pattern(image: Path, fmt: str, offset: int = 0) -> None:
    """Put real, non-zero data into an image through QEMU's block layer."""
    subprocess.run(
        ["qemu-io", "-f", fmt, "-c", f"write -P 0x5a {offset} 64k", str(image)],
        check=True,
        capture_output=True,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def registry(tmp_path: Path) -> TemplateRegistry:
    return TemplateRegistry(tmp_path / "templates")


@pytest.fixture
def qcow2_disk(tmp_path: Path) -> Path:
    disk = make_image(tmp_path / "src.qcow2", "qcow2")
    write_pattern(disk, "qcow2")
    return disk


@pytest.fixture
def boot_files(tmp_path: Path) -> tuple[Path, Path]:
    kernel = tmp_path / "vmlinuz-6.1"
    initrd = tmp_path / "initrd-6.1.img"
    kernel.write_bytes(b"\x7fkernel" * 1000)
    initrd.write_bytes(b"initrd" * 1000)
    return kernel, initrd


# -- adding ---------------------------------------------------------------------


def test_add_qcow2_disk_copies_read_only_with_manifest(
    registry: TemplateRegistry, qcow2_disk: Path
) -> None:
    source_digest = sha256(qcow2_disk)
    template = registry.add("debian-12", qcow2_disk)

    assert template.kind == "disk"
    assert template.format == "qcow2"
    assert template.virtual_size == 4 * MIB
    assert template.disk == registry.root / "debian-12" / "disk.qcow2"
    assert template.kernel is None and template.initrd is None
    assert template.sha256 == {"disk.qcow2": source_digest}
    assert qcow2_disk.exists(), "add copies unless asked to move"
    assert mode(template.disk) == 0o444
    assert mode(template.directory / "manifest.json") == 0o444
    assert mode(template.directory) == 0o555

    manifest = json.loads((template.directory / "manifest.json").read_text())
    assert manifest["name"] == "debian-12"
    assert manifest["format"] == "qcow2"
    assert manifest["sha256"] == {"disk.qcow2": source_digest}
    assert registry.get("debian-12") == template


@pytest.mark.parametrize("fmt", ["raw", "vmdk"])
def test_format_is_detected_not_guessed_from_the_name(
    registry: TemplateRegistry, tmp_path: Path, fmt: str
) -> None:
    disk = make_image(tmp_path / "image.img", fmt)
    template = registry.add(f"t-{fmt}", disk)
    assert template.format == fmt
    assert template.disk is not None and template.disk.name == f"disk.{fmt}"
    assert qemuimg.info(template.disk).format == fmt


def test_sparse_raw_disk_stays_sparse(registry: TemplateRegistry, tmp_path: Path) -> None:
    disk = make_image(tmp_path / "big.raw", "raw", "256M")
    write_pattern(disk, "raw", offset=100 * MIB)
    template = registry.add("big", disk)
    assert template.disk is not None
    assert template.disk.stat().st_size == 256 * MIB
    assert template.disk.stat().st_blocks * 512 < 8 * MIB
    assert template.sha256["disk.raw"] == sha256(disk)


def test_move_takes_the_file_away(registry: TemplateRegistry, qcow2_disk: Path) -> None:
    digest = sha256(qcow2_disk)
    template = registry.add("built", qcow2_disk, move=True)
    assert not qcow2_disk.exists()
    assert template.disk is not None and sha256(template.disk) == digest


def test_direct_boot_template(
    registry: TemplateRegistry, qcow2_disk: Path, boot_files: tuple[Path, Path]
) -> None:
    kernel, initrd = boot_files
    template = registry.add(
        "tiny", qcow2_disk, kernel=kernel, initrd=initrd, cmdline="console=ttyS0"
    )
    assert template.kind == "direct"
    assert template.kernel == template.directory / "vmlinuz"
    assert template.initrd == template.directory / "initrd.img"
    assert template.cmdline == "console=ttyS0"
    assert template.format == "qcow2"
    assert set(template.sha256) == {"disk.qcow2", "vmlinuz", "initrd.img"}
    assert template.sha256["vmlinuz"] == sha256(kernel)


def test_kernel_alone_is_enough(registry: TemplateRegistry, boot_files: tuple[Path, Path]) -> None:
    template = registry.add("kernel-only", None, kernel=boot_files[0])
    assert template.kind == "direct"
    assert template.disk is None and template.format is None and template.virtual_size is None
    assert template.initrd is None


def test_initrd_without_kernel_is_refused(
    registry: TemplateRegistry, qcow2_disk: Path, boot_files: tuple[Path, Path]
) -> None:
    with pytest.raises(ConflictError) as caught:
        registry.add("x", qcow2_disk, initrd=boot_files[1])
    assert caught.value.message == "template x: an initrd needs a kernel"
    assert registry.names() == []


def test_nothing_to_register_is_refused(registry: TemplateRegistry) -> None:
    with pytest.raises(ConflictError) as caught:
        registry.add("empty", None)
    assert caught.value.message == "template empty: give a disk image, a kernel, or both"


def test_existing_name_is_refused(registry: TemplateRegistry, qcow2_disk: Path) -> None:
    first = registry.add("base", qcow2_disk)
    with pytest.raises(ConflictError) as caught:
        registry.add("base", qcow2_disk)
    assert caught.value.message == "template base already exists"
    assert registry.get("base") == first


@pytest.mark.parametrize("name", ["", "a/b", "../up", ".hidden", "with space", "ümlaut"])
def test_invalid_names_are_refused(registry: TemplateRegistry, qcow2_disk: Path, name: str) -> None:
    with pytest.raises(ConflictError) as caught:
        registry.add(name, qcow2_disk)
    assert caught.value.message == f"invalid template name {name!r}"


def test_missing_file_is_named(registry: TemplateRegistry, tmp_path: Path) -> None:
    missing = tmp_path / "no-such.qcow2"
    with pytest.raises(NotFoundError) as caught:
        registry.add("m", missing)
    assert caught.value.message == f"template m: disk file not found: {missing}"


def test_missing_kernel_is_named(registry: TemplateRegistry, qcow2_disk: Path, tmp_path: Path):
    with pytest.raises(NotFoundError) as caught:
        registry.add("m", qcow2_disk, kernel=tmp_path / "vmlinuz-gone")
    assert caught.value.message == (
        f"template m: kernel file not found: {tmp_path / 'vmlinuz-gone'}"
    )


def test_directory_instead_of_file_is_named(registry: TemplateRegistry, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        registry.add("d", tmp_path)
    assert caught.value.message == f"template d: disk is not a regular file: {tmp_path}"


def test_a_name_too_long_for_the_file_system_is_named(registry: TemplateRegistry,
                                                      tmp_path: Path) -> None:
    too_long = tmp_path / ("0" * 300)
    with pytest.raises(NotFoundError) as caught:
        registry.add("l", too_long)
    assert caught.value.message == (
        f"template l: cannot read disk file {too_long}: File name too long")


def test_disk_with_backing_file_is_refused(registry: TemplateRegistry, qcow2_disk: Path) -> None:
    overlay = qemuimg.create_overlay(qcow2_disk, "qcow2", qcow2_disk.with_name("ov.qcow2"))
    assert overlay.backing_file
    with pytest.raises(ConflictError) as caught:
        registry.add("ov", qcow2_disk.with_name("ov.qcow2"))
    assert caught.value.message == (
        f"template ov: disk {qcow2_disk.with_name('ov.qcow2')} has a backing file ({qcow2_disk})"
    )
    assert registry.names() == []
    assert not registry.root.exists(), "refused before anything is written"


def test_unusable_root_is_a_config_error(tmp_path: Path, qcow2_disk: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    registry = TemplateRegistry(blocker / "templates")
    with pytest.raises(ConfigError) as caught:
        registry.add("t", qcow2_disk)
    assert caught.value.message.startswith(f"template directory {blocker / 'templates'}")


# -- reading --------------------------------------------------------------------


def test_get_unknown_suggests_close_name(registry: TemplateRegistry, qcow2_disk: Path) -> None:
    registry.add("debian-12", qcow2_disk)
    with pytest.raises(NotFoundError) as caught:
        registry.get("debain-12")
    assert caught.value.message == "template debain-12 not found"
    assert caught.value.hint == "did you mean 'debian-12'?"


def test_get_on_empty_registry_says_so(registry: TemplateRegistry) -> None:
    with pytest.raises(NotFoundError) as caught:
        registry.get("anything")
    assert caught.value.hint == "no templates are registered; add one with 'corral template add'"


def test_list_is_sorted_and_skips_unfinished_adds(
    registry: TemplateRegistry, qcow2_disk: Path, boot_files: tuple[Path, Path]
) -> None:
    registry.add("zeta", qcow2_disk)
    registry.add("alpha", None, kernel=boot_files[0])
    (registry.root / ".adding-beta-x1y2").mkdir()
    (registry.root / "stray-dir").mkdir()
    listed = registry.list()
    assert [t.name for t in listed] == ["alpha", "zeta"]
    assert all(isinstance(t, Template) for t in listed)


def test_corrupt_manifest_is_named(registry: TemplateRegistry, qcow2_disk: Path) -> None:
    template = registry.add("c", qcow2_disk)
    manifest = template.directory / "manifest.json"
    template.directory.chmod(0o755)
    manifest.chmod(0o644)
    manifest.write_text("{not json")
    with pytest.raises(BackendError) as caught:
        registry.get("c")
    assert caught.value.message.startswith(f"template manifest {manifest} is unreadable")


# -- immutability and verification ---------------------------------------------


def test_template_bytes_unchanged_after_overlays_are_used(
    registry: TemplateRegistry, qcow2_disk: Path, tmp_path: Path
) -> None:
    template = registry.add("base", qcow2_disk)
    assert template.disk is not None and template.format is not None
    before = sha256(template.disk)
    for index in range(3):
        overlay = tmp_path / f"run{index}.qcow2"
        qemuimg.create_overlay(template.disk, template.format, overlay, size_bytes=8 * MIB)
        write_pattern(overlay, "qcow2", offset=index * MIB)
    assert sha256(template.disk) == before == template.sha256["disk.qcow2"]
    registry.verify("base")


def test_verify_names_the_changed_file(
    registry: TemplateRegistry, qcow2_disk: Path, boot_files: tuple[Path, Path]
) -> None:
    template = registry.add("t", qcow2_disk, kernel=boot_files[0])
    registry.verify("t")
    assert template.kernel is not None
    template.kernel.chmod(0o644)
    with template.kernel.open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(BackendError) as caught:
        registry.verify("t")
    assert caught.value.message == "template t changed on disk: vmlinuz"


def test_verify_names_a_missing_file(registry: TemplateRegistry, qcow2_disk: Path) -> None:
    template = registry.add("t", qcow2_disk)
    template.directory.chmod(0o755)
    assert template.disk is not None
    template.disk.unlink()
    with pytest.raises(BackendError) as caught:
        registry.verify("t")
    assert (
        caught.value.message == "template t changed on disk: disk.qcow2 (No such file or directory)"
    )


# -- removing -------------------------------------------------------------------


def test_remove_refused_while_in_use(registry: TemplateRegistry, qcow2_disk: Path) -> None:
    registry.add("base", qcow2_disk)
    with pytest.raises(ConflictError) as caught:
        registry.remove("base", in_use_by=["lab-web", "lab-db"])
    assert caught.value.message == "template base is in use by: lab-db, lab-web"
    registry.verify("base")


def test_remove_deletes_the_read_only_directory(
    registry: TemplateRegistry, qcow2_disk: Path
) -> None:
    registry.add("base", qcow2_disk)
    registry.remove("base")
    assert registry.names() == []
    assert list(registry.root.iterdir()) == []
    with pytest.raises(NotFoundError):
        registry.get("base")
    assert qcow2_disk.exists(), "the file the template was copied from is not touched"


def test_remove_unknown_is_not_found(registry: TemplateRegistry) -> None:
    with pytest.raises(NotFoundError) as caught:
        registry.remove("ghost")
    assert caught.value.message == "template ghost not found"


# -- concurrency ----------------------------------------------------------------


def test_concurrent_adds_of_different_names(registry: TemplateRegistry, tmp_path: Path) -> None:
    sources = []
    for index in range(8):
        disk = make_image(tmp_path / f"src{index}.qcow2", "qcow2")
        write_pattern(disk, "qcow2", offset=index * 65536)
        sources.append(disk)
    start = threading.Barrier(len(sources))

    def add(index: int) -> Template:
        start.wait()
        return registry.add(f"t{index}", sources[index])

    with ThreadPoolExecutor(len(sources)) as pool:
        added = list(pool.map(add, range(len(sources))))

    assert registry.names() == sorted(f"t{i}" for i in range(8))
    for index, template in enumerate(added):
        assert template.sha256[f"disk.{template.format}"] == sha256(sources[index])
        registry.verify(template.name)
    assert not [p for p in registry.root.iterdir() if p.name.startswith(".")]


def test_concurrent_adds_of_one_name_have_one_winner(
    registry: TemplateRegistry, tmp_path: Path
) -> None:
    sources = [make_image(tmp_path / f"s{index}.qcow2", "qcow2") for index in range(6)]
    start = threading.Barrier(len(sources))

    def add(index: int) -> str:
        start.wait()
        try:
            registry.add("same", sources[index])
        except ConflictError as error:
            return error.message
        return "added"

    with ThreadPoolExecutor(len(sources)) as pool:
        outcomes = list(pool.map(add, range(len(sources))))

    assert outcomes.count("added") == 1
    assert set(outcomes) == {"added", "template same already exists"}
    assert registry.names() == ["same"]
    assert not [p for p in registry.root.iterdir() if p.name.startswith(".")]


def test_a_new_root_is_reachable_by_qemu_whatever_the_umask(
    tmp_path: Path, qcow2_disk: Path
) -> None:
    """QEMU's user must read templates without libvirt relabelling them."""
    import os

    root = tmp_path / "fresh" / "templates"
    previous = os.umask(0o077)
    try:
        template = TemplateRegistry(root).add("base", disk=qcow2_disk)
    finally:
        os.umask(previous)
    assert mode(root) == 0o755
    assert mode(template.directory) == 0o555 and mode(template.disk) == 0o444


def test_what_a_builder_put_in_is_recorded_and_read_back(
    registry: TemplateRegistry, qcow2_disk: Path, boot_files: tuple[Path, Path]
) -> None:
    kernel, initrd = boot_files
    tpl = registry.add("deb", qcow2_disk, kernel=kernel, initrd=initrd, os_name="debian",
                       release="bookworm", packages=["htop", "curl"])
    again = registry.get("deb")
    assert (again.os, again.release, again.packages) == ("debian", "bookworm",
                                                         ("htop", "curl"))
    assert again == tpl
    plain = registry.add("plain", qcow2_disk)
    assert (plain.os, plain.release, plain.packages) == (None, None, ())


def test_a_taken_name_is_refused_before_anything_is_built(
    registry: TemplateRegistry, qcow2_disk: Path
) -> None:
    registry.add("deb", qcow2_disk)
    with pytest.raises(ConflictError, match="template deb already exists"):
        registry.check_free("deb")
    with pytest.raises(ConflictError, match="invalid template name"):
        registry.check_free("no/slash")
    registry.check_free("other")


# -- root filesystems (lxc hosts' templates) -------------------------------------


@pytest.fixture
def rootfs_tar(tmp_path: Path) -> Path:
    """A small root tree packed as the builder packs one (GNU tar, numeric owners)."""
    tree = tmp_path / "tree"
    (tree / "sbin").mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "sbin/init").write_text("#!/bin/sh\n")
    (tree / "sbin/init").chmod(0o755)
    (tree / "etc/hostname").write_text("debian\n")
    tar = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "--numeric-owner", "-C", str(tree), "-cf", str(tar), "."],
                   check=True)
    return tar


def test_a_rootfs_template_holds_its_tar_alone(
    registry: TemplateRegistry, rootfs_tar: Path
) -> None:
    digest = sha256(rootfs_tar)
    template = registry.add("ct", None, rootfs=rootfs_tar, os_name="debian",
                            release="bookworm", packages=["nginx"])

    assert template.kind == "rootfs"
    assert template.rootfs == registry.root / "ct" / "rootfs.tar"
    assert (template.disk, template.kernel, template.initrd) == (None, None, None)
    assert (template.format, template.virtual_size, template.cmdline) == (None, None, None)
    assert template.sha256 == {"rootfs.tar": digest}
    assert mode(template.rootfs) == 0o444 and mode(template.directory) == 0o555
    assert rootfs_tar.exists(), "add copies unless asked to move"
    assert registry.list() == [template] and registry.get("ct") == template
    manifest = json.loads((template.directory / "manifest.json").read_text())
    assert manifest["kind"] == "rootfs" and manifest["rootfs"] == "rootfs.tar"
    registry.verify("ct")


def test_a_rootfs_with_a_disk_or_kernel_is_refused(
    registry: TemplateRegistry, rootfs_tar: Path, qcow2_disk: Path,
    boot_files: tuple[Path, Path],
) -> None:
    for files in ({"disk": qcow2_disk}, {"kernel": boot_files[0]}, {"initrd": boot_files[1]}):
        disk = files.pop("disk", None)
        with pytest.raises(ConflictError, match="a rootfs template is a container's root "
                           "filesystem alone; it has no disk, kernel or initrd"):
            registry.add("ct", disk, rootfs=rootfs_tar, **files)
    assert registry.names() == []


def test_a_rootfs_that_is_no_tar_is_refused(registry: TemplateRegistry, tmp_path: Path) -> None:
    bogus = tmp_path / "rootfs.tar"
    bogus.write_bytes(b"not a tar" * 200)
    with pytest.raises(ConflictError, match="is not a tar archive"):
        registry.add("ct", None, rootfs=bogus)
    assert registry.names() == []


def test_verify_notices_a_changed_rootfs(registry: TemplateRegistry, rootfs_tar: Path) -> None:
    template = registry.add("ct", None, rootfs=rootfs_tar, move=True)
    assert not rootfs_tar.exists()
    assert template.rootfs is not None
    template.rootfs.chmod(0o644)
    with template.rootfs.open("ab") as handle:
        handle.write(b"\0" * 512 + b"x")
    with pytest.raises(BackendError) as caught:
        registry.verify("ct")
    assert caught.value.message == "template ct changed on disk: rootfs.tar"

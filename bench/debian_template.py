"""Benchmark: building a Debian template, and a Debian guest's boot to cloud-init done.

Two measurements on a scratch site whose service host is the local libvirtd:

* **build**: ``corral template build debian --packages htop`` through the
  operations layer (mmdebstrap, the tree prepared for cloud-init, ``mke2fs
  -d``, ``qemu-img convert``, registration with checksums), against its
  floor in the same run: the same ``mmdebstrap`` command line alone, with
  the same package cache, into a directory. The ratio is what Corral adds
  to the install itself. Sizes: the qcow2's bytes on disk and its virtual
  size, the kernel and the initramfs.
* **boot**: ``corral up`` of one guest on that template (512 MiB, one vCPU,
  a static address) until cloud-init's final message is on the console,
  against the guest's own boot as the guest measures it: from its kernel's
  start (``/proc/uptime``) to cloud-init's ``modules-final`` stage finished
  (``/run/cloud-init/status.json``), read over SSH afterwards. The ratio is
  what Corral adds to the boot (run copy, seed, definition, start, waiting
  for the console line).

    sudo .venv/bin/python bench/debian_template.py [--release bookworm]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libvirt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    interrupt_on_sigterm,
    project_name,
    require_root_for,
    scratch_dir,
    site_config,
    sweep,
)

from corral.images import debian_builder  # noqa: E402
from corral.ops import projects  # noqa: E402
from corral.ops.session import Session  # noqa: E402
from corral.ops.templates import DebianOptions, build_template  # noqa: E402

URI = "qemu:///system"
PACKAGES = ("htop",)
SUBNET = "10.239.77"  # outside the tests' 10.240/16 and the demo's 10.231/16
MIB = 1024 * 1024


def floor_install(root: Path, release: str) -> float:
    """Seconds of the builder's mmdebstrap command alone (same packages, same cache)."""
    tree = Path(tempfile.mkdtemp(dir=root, prefix="floor-"))
    shutil.rmtree(tree)
    command = debian_builder.mmdebstrap_command(
        tree, release, (*debian_builder.BASE_PACKAGES, *PACKAGES),
        debian_builder.DEFAULT_MIRROR, debian_builder.DEFAULT_CACHE)
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    elapsed = time.perf_counter() - began
    shutil.rmtree(tree, ignore_errors=True)
    return elapsed


def project_text(name: str, key: Path) -> str:
    return f"""\
global {{
    project {name}
    sshkey {{ root {key}.pub }}
}}
switch lan {{ address {SUBNET}.1/24 }}
host deb {{
    template bench-debian
    qemu
    memory 512M
    vcpus 1
    wait console 900
    network eth0 {{
        switch lan
        address {SUBNET}.10
        netmask 255.255.255.0
    }}
}}
"""


def guest_boot_s(key: Path) -> float:
    """The guest's own boot: kernel start to cloud-init's final stage finished."""
    script = (
        "python3 -c 'import json,time;"
        "up=float(open(\"/proc/uptime\").read().split()[0]);"
        "s=json.load(open(\"/run/cloud-init/status.json\"));"
        "print(json.dumps({\"up\":up,\"now\":time.time(),"
        "\"final\":s[\"v1\"][\"modules-final\"][\"finished\"]}))'"
    )
    done = subprocess.run(
        ["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
         f"root@{SUBNET}.10", script], capture_output=True, text=True, timeout=60, check=True)
    facts = json.loads(done.stdout)
    booted_at = facts["now"] - facts["up"]
    return float(facts["final"] - booted_at)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--release", default=debian_builder.DEFAULT_RELEASE)
    args = parser.parse_args(argv)
    why = require_root_for(URI)
    if why:
        print(f"debian_template: {why}", file=sys.stderr)
        return 1
    with interrupt_on_sigterm(), scratch_dir("corral-debian-") as root:
        site = site_config(root, URI)
        floor = floor_install(root, args.release)  # also warms the package cache
        with Session(site) as session:
            began = time.perf_counter()
            template = build_template(session, "debian", "bench-debian", DebianOptions(
                release=args.release, packages=PACKAGES))
            built_s = time.perf_counter() - began
        (root / "templates").chmod(0o755)
        disk = template.disk
        assert disk is not None and template.kernel is not None and template.initrd is not None
        on_disk = disk.stat().st_blocks * 512
        kernel_size, initrd_size = template.kernel.stat().st_size, template.initrd.stat().st_size

        name = project_name("deb")
        key = root / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
        path = root / f"{name}.corral"
        path.write_text(project_text(name, key))
        try:
            with Session(site) as session:
                began = time.perf_counter()
                result = projects.up(session, path)
                up_s = time.perf_counter() - began
            if not all(r.ready for r in result.readiness):
                print(f"debian_template: guest not ready: {result.readiness}", file=sys.stderr)
                return 1
            own_s = guest_boot_s(key)
        finally:
            with Session(site) as session:
                projects.remove(session, name)
            conn = libvirt.open(URI)
            try:
                sweep(conn, name)
            finally:
                conn.close()

    print(f"\nDebian {args.release} template with {', '.join(PACKAGES)}, on {URI}\n")
    print(f"{'measure':<44} {'seconds':>8} {'floor':>8} {'x floor':>8}")
    print(f"{'template build (corral)':<44} {built_s:>8.1f} {floor:>8.1f} "
          f"{built_s / floor:>8.2f}")
    print(f"{'boot to cloud-init done (corral up)':<44} {up_s:>8.1f} {own_s:>8.1f} "
          f"{up_s / own_s:>8.2f}")
    print("\nfloors: the same mmdebstrap alone; the guest's own kernel-start to "
          "cloud-init-final time")
    print(f"\ndisk: {on_disk / MIB:.0f} MiB on disk (qcow2), "
          f"{(template.virtual_size or 0) / MIB:.0f} MiB virtual; kernel "
          f"{kernel_size / MIB:.1f} MiB, initramfs {initrd_size / MIB:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

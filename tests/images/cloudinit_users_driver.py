"""Apply a seed's users, passwords and files with Debian's cloud-init in a private /etc.

Run by /usr/bin/python3 under ``unshare -m`` (it refuses to run in the
caller's mount namespace, named by ``$CORRAL_OUTER_MNT_NS``): it bind-mounts
a copy of /etc and empty /home, /srv, /var/mail over the real ones, creates a
user ``debian`` the way a cloud image ships one, then runs the handlers of
cloud-init's modules in the order Debian's /etc/cloud/cloud.cfg runs them — ``write_files`` and
``users_groups`` (init stage), ``set_passwords`` (config stage),
``write_files_deferred`` (final stage) — with the real useradd, chpasswd and
chown. It prints JSON: the shadow hash and passwd entry of every user, owner,
mode and text of every written file, the authorized_keys files, and the
errors of the stages that failed.

``argv``: WORKDIR USER-DATA [MODE]. MODE ``seed`` (default) runs the stages
above; ``passwd-in-users`` and ``undeferred-files`` are the control
experiments: the old ways (``passwd`` under ``users``, every file written in
the init stage), to show what goes wrong without chpasswd and defer.
"""

from __future__ import annotations

import grp
import json
import logging
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from cloudinit import cloud, distros, helpers
from cloudinit.config import (
    cc_set_passwords,
    cc_users_groups,
    cc_write_files,
    cc_write_files_deferred,
)
from cloudinit.sources.DataSourceNone import DataSourceNone

LOG = logging.getLogger("corral-test")
OLD_DEBIAN_HASH = "$6$old$0ldHashOfTheImageUser"


def private_root(work: Path) -> None:
    outer = os.environ.get("CORRAL_OUTER_MNT_NS")  # the caller's, read before unshare
    if not outer or os.readlink("/proc/self/ns/mnt") == outer:
        sys.exit("refusing to run outside a private mount namespace (use unshare -m)")
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    shutil.copytree("/etc", work / "etc", symlinks=True)
    for directory in ("etc", "home", "srv", "var/mail"):
        (work / directory).mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", str(work / directory), f"/{directory}"], check=True)


def stage(errors: dict, name: str, handler, config: dict, instance: cloud.Cloud) -> None:
    try:
        handler.handle(name, config, instance, LOG, [])
    except Exception as error:  # the test reads which stage failed and why
        errors[name] = f"{type(error).__name__}: {error}"


def report(config: dict) -> dict:
    shadow = {
        line.split(":")[0]: line.split(":")[1]
        for line in Path("/etc/shadow").read_text().splitlines()
    }
    users = {}
    names = [u["name"] for u in config.get("users", [])]
    names += [u["name"] for u in config.get("chpasswd", {}).get("users", [])]
    for name in dict.fromkeys(names):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        keys = Path(entry.pw_dir) / ".ssh" / "authorized_keys"
        users[name] = {
            "uid": entry.pw_uid,
            "hash": shadow.get(name),
            "keys": keys.read_text() if keys.exists() else None,
        }
    files = {}
    for spec in config.get("write_files", []):
        path = Path(spec["path"])
        if path.exists():
            info = path.stat()
            files[spec["path"]] = {
                "owner": f"{pwd.getpwuid(info.st_uid).pw_name}:{grp.getgrgid(info.st_gid).gr_name}",
                "mode": f"{info.st_mode & 0o7777:04o}",
                "text": path.read_text(),
            }
    return {"users": users, "files": files}


def main() -> None:
    work, user_data = Path(sys.argv[1]), Path(sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else "seed"
    config = yaml.safe_load(user_data.read_text())
    private_root(work)
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "debian"], check=True)
    subprocess.run(["chpasswd", "-e"], input=f"debian:{OLD_DEBIAN_HASH}\n", text=True, check=True)
    if mode == "passwd-in-users":
        for user in config.get("users", []):
            for entry in config.get("chpasswd", {}).get("users", []):
                if entry["name"] == user["name"]:
                    user["passwd"] = entry["password"]
        config.pop("chpasswd", None)
    if mode == "undeferred-files":
        for spec in config.get("write_files", []):
            spec.pop("defer", None)
    paths = helpers.Paths({"cloud_dir": str(work / "cloud"), "run_dir": str(work / "run")})
    distro = distros.fetch("debian")("debian", {}, paths)
    # DataSourceNone: cloud-init's own datasource for "no metadata service"
    source = DataSourceNone({}, distro, paths)
    instance = cloud.Cloud(source, paths, config, distro, helpers.Runners(paths))
    errors: dict = {}
    stage(errors, "write_files", cc_write_files, config, instance)
    stage(errors, "users_groups", cc_users_groups, config, instance)
    stage(errors, "set_passwords", cc_set_passwords, config, instance)
    stage(errors, "write_files_deferred", cc_write_files_deferred, config, instance)
    # the handlers rewrite their config in place: report from the seed as written
    json.dump({**report(yaml.safe_load(user_data.read_text())), "errors": errors}, sys.stdout)


if __name__ == "__main__":
    main()

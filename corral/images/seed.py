"""NoCloud seed ISOs: how one template becomes many individual guests.

A guest reads its identity from a small ISO9660 volume labelled ``cidata``
holding three YAML documents, the cloud-init NoCloud convention, so real cloud
images and Corral's ``tiny`` template read the same seed:

* ``meta-data``: ``instance-id`` and ``local-hostname``. The instance id is
  ``PROJECT-HOST-MODELHASH``: it changes whenever the host's model changes, so
  per-instance work (users, files, ``runcmd``) runs again after such a change,
  and only then.
* ``user-data``: ``#cloud-config`` with hostname, ``users`` (names and ssh
  keys), ``chpasswd.users`` (the crypt hash of every password, root's
  included, so it reaches existing users too), packages, ``write_files``
  (``defer: true`` when not owned by root) and ``runcmd`` (shell command
  lines, see :mod:`corral.model.hosts`); ``final_message`` makes cloud-init
  print ``corral-ready HOST`` on the console at the end of every boot, the
  signal Corral waits for. docs/guest-configuration.md explains each choice.
* ``network-config``: version 2; one ``ethernets`` entry per configured
  interface, matched by MAC and renamed to the model's interface name, with
  ``addresses`` + ``gateway4`` or ``dhcp4``, and ``nameservers``.

Layout contract with the tiny guest's parser (``corral/images/tiny/flatyaml.awk``):
the documents are PyYAML block style (``safe_dump``, no flow style, no key
sorting, no line folding), two-space indented mappings, sequences written as
``- item`` at the indentation of their key, scalars plain or quoted on one line
(single quotes double an inner quote; double quotes use YAML's backslash
escapes, which carry every non-ASCII character: the documents are ASCII).
Nothing else (anchors, block literals, folded lines) is ever emitted, and file
contents travel base64-encoded (``encoding: b64``) so they never need more.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import pycdlib
import yaml

from corral.images.passwords import guest_password
from corral.model.project import FileSpec, Host, Interface, Virt

VOLUME_ID = "cidata"
READY_MARKER = "corral-ready"

# (ISO9660 8.3 name, Rock Ridge / Joliet name). ISO9660 level-1 names cannot
# hold '-', so the short names differ; every reader Corral cares about (Linux
# isofs, cloud-init) sees the Rock Ridge or Joliet names.
_SEED_FILES = (
    ("META_DAT.;1", "meta-data"),
    ("USER_DAT.;1", "user-data"),
    ("NETWORK_.;1", "network-config"),
)

# Where cloud-init writes what it prints (its default), and the container's
# console log, in the directory Corral mounts at /var/log/corral.
CLOUD_INIT_LOG = "/var/log/cloud-init-output.log"
CONTAINER_CONSOLE_LOG = "/var/log/corral/console.log"

# MLN lets a static address omit its netmask; Debian's installer and MLN's own
# templates assume a /24 in that case, and cloud-init needs some prefix.
_DEFAULT_PREFIX = 24


@dataclass(frozen=True, slots=True)
class SeedDocuments:
    """The three NoCloud documents of one host, as text."""

    meta_data: str
    user_data: str
    network_config: str

    def by_name(self) -> dict[str, str]:
        """The documents keyed by their file names on the seed volume."""
        return {
            "meta-data": self.meta_data,
            "user-data": self.user_data,
            "network-config": self.network_config,
        }


def instance_id(host: Host, project: str) -> str:
    """``PROJECT-HOST-MODELHASH``: stable while the model is, new when it changes."""
    return f"{project}-{host.name}-{host.model_hash()}"


def ready_line(hostname: str) -> str:
    """The console line a guest prints when it is individualised and up."""
    return f"{READY_MARKER} {hostname}"


def seed_documents(host: Host, project: str, baked: Collection[str] = ()) -> SeedDocuments:
    """Render the meta-data, user-data and network-config of ``host``; ``baked``
    are the packages its template was built with (cloud-init is not asked for
    them again: :mod:`corral.images.installers`)."""
    meta = {"instance-id": instance_id(host, project), "local-hostname": host.name}
    return SeedDocuments(
        meta_data=_dump(meta),
        user_data="#cloud-config\n" + _dump(_cloud_config(host, baked)),
        network_config=_dump(_network_config(host)),
    )


def build_seed(host: Host, project: str, baked: Collection[str] = ()) -> bytes:
    """The seed ISO of ``host`` (volume ``cidata``, Joliet + Rock Ridge) as bytes;
    ``baked`` as for :func:`seed_documents`."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident=VOLUME_ID, joliet=3, rock_ridge="1.09")
    try:
        for (iso_name, name), text in zip(
            _SEED_FILES, seed_documents(host, project, baked).by_name().values(), strict=True
        ):
            data = text.encode("utf-8")
            iso.add_fp(
                io.BytesIO(data),
                len(data),
                iso_path=f"/{iso_name}",
                rr_name=name,
                joliet_path=f"/{name}",
            )
        out = io.BytesIO()
        iso.write_fp(out)
        return out.getvalue()
    finally:
        iso.close()


def _dump(document: dict[str, Any]) -> str:
    # width=inf: never fold a long runcmd line; the guest parser reads one line per scalar.
    # ASCII only (no allow_unicode): with it PyYAML writes U+0085 and U+2028 raw,
    # and YAML readers (cloud-init's included) then take them for line breaks.
    return yaml.safe_dump(document, default_flow_style=False, sort_keys=False, width=float("inf"))


def _cloud_config(host: Host, baked: Collection[str]) -> dict[str, Any]:
    config: dict[str, Any] = {"hostname": host.name, "preserve_hostname": False}
    users = _users(host)
    if users:
        config["users"] = users
    if "root" in host.ssh_keys:
        config["disable_root"] = False
    passwords = _passwords(host)
    if passwords:
        config["ssh_pwauth"] = True
        config["chpasswd"] = {"expire": False, "users": passwords}
    packages = [p for p in host.packages if p not in baked]
    if packages:
        config["packages"] = packages
    if host.files:
        config["write_files"] = [_write_file(spec) for spec in host.files]
    if host.runcmd:
        config["runcmd"] = list(host.runcmd)
    config["final_message"] = ready_line(host.name)
    if host.virt is Virt.LXC:
        # libvirt logs no container console: cloud-init copies what it prints to a
        # directory Corral mounts into the container (corral.backends.libvirt.containers).
        config["output"] = {"all": f"| tee -a {CLOUD_INIT_LOG} {CONTAINER_CONSOLE_LOG}"}
    return config


def _users(host: Host) -> list[dict[str, Any]]:
    """Model users, plus anyone (root included) who only has ssh keys.

    Passwords are not set here but in ``chpasswd`` (:func:`_passwords`):
    cloud-init's ``users`` module skips ``passwd`` for a user that already
    exists (``root``, a template's own user). ``lock_passwd: false`` for all:
    cloud-init would otherwise lock the password of an existing user the file
    only gives keys to, and a new user without a password is created locked
    (``!``) by ``useradd`` anyway.
    """
    names = list(host.users)
    names += [name for name in host.ssh_keys if name not in host.users]
    entries = []
    for name in names:
        entry: dict[str, Any] = {"name": name, "lock_passwd": False}
        keys = host.ssh_keys.get(name, ())
        if keys:
            entry["ssh_authorized_keys"] = list(keys)
        entries.append(entry)
    return entries


def _passwords(host: Host) -> list[dict[str, str]]:
    """``chpasswd.users`` entries: every user with a password, root included.

    cloud-init's ``set_passwords`` runs ``chpasswd -e`` with these hashes in
    its config stage, after ``users_groups`` created the users, and it applies
    to users that existed before as well as to new ones.
    """
    passwords = dict(host.users)
    if host.root_passwd:
        passwords["root"] = host.root_passwd
    return [
        {"name": name, "password": guest_password(value, f"{host.name}/{name}"), "type": "hash"}
        for name, value in passwords.items()
    ]


def _write_file(spec: FileSpec) -> dict[str, Any]:
    """One ``write_files`` entry; a file not owned by root:root is deferred.

    cloud-init writes ``write_files`` in its init stage, before
    ``users_groups`` creates the users; ``defer: true`` moves a file to the
    final stage (``write_files_deferred``), after the users and the packages
    (whose users and groups a file may name) and before ``runcmd`` runs.
    """
    entry: dict[str, Any] = {
        "path": spec.path,
        "encoding": "b64",
        "content": base64.b64encode(spec.content.encode("utf-8")).decode("ascii"),
        "owner": spec.owner,
        "permissions": spec.permissions,
    }
    if not _owned_by_root(spec.owner):
        entry["defer"] = True
    return entry


def _owned_by_root(owner: str) -> bool:
    return all(part in ("root", "0") for part in owner.split(":"))


def _network_config(host: Host) -> dict[str, Any]:
    ethernets = {
        iface.name: _ethernet(iface, host.nameservers)
        for iface in host.interfaces
        if iface.address is not None
    }
    return {"version": 2, "ethernets": ethernets}


def _ethernet(iface: Interface, nameservers: tuple[str, ...]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "match": {"macaddress": iface.mac.lower()},
        "set-name": iface.name,
    }
    if iface.is_static:
        entry["addresses"] = [_cidr(iface)]
        if iface.gateway:
            # gateway4, not a 0.0.0.0/0 route: every cloud-init renderer turns it
            # into its native default route (ENI "gateway", networkd Gateway=,
            # sysconfig GATEWAY=), where a route becomes "route add" commands in
            # ENI that need net-tools. 22.4 does not accept "to: default".
            entry["gateway4"] = iface.gateway
    else:
        entry["dhcp4"] = True
    if nameservers:
        entry["nameservers"] = {"addresses": list(nameservers)}
    return entry


def _cidr(iface: Interface) -> str:
    address = iface.address or ""
    if "/" in address:
        return address
    prefix = iface.prefix_length if iface.netmask else _DEFAULT_PREFIX
    return f"{address}/{prefix}"

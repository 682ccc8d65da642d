"""What the server's tests share besides fixtures: the site and project texts,
the cast's tokens, and polling a job to its end."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from corral.config import SiteConfig, parse_site_config

SITE = """
[defaults]
template = "base"
virt_type = "qemu"

[paths]
templates = "{root}/templates"
state = "{root}/state.db"
runs = "{root}/runs"

[service_hosts.local]
uri = "test:///default"

[server]
listen = "127.0.0.1:0"
allowed_networks = [{networks}]
"""


LAB = """
global {
    project lab
}
superclass node {
    template base
    qemu
    memory 128M
    maxmem 256M
    wait none
}
switch front { address 10.9.1.1/24 }
host web {
    superclass node
    network eth0 {
        switch front
        address dhcp
    }
}
host app {
    superclass node
    network eth0 {
        switch front
        address 10.9.1.20
        netmask 255.255.255.0
    }
}
"""


CLIENT = ("127.0.0.1", 40000)


ROLES = ("anonymous", "metrics", "other", "reader", "writer", "owner", "admin")


def write_site(root: Path, networks: str = '"127.0.0.0/8"',
               state_url: str | None = None) -> SiteConfig:
    """The test site under ``root``; its state database the SQLite file there, or
    the one ``state_url`` names."""
    config = root / "corral.toml"
    text = SITE.format(root=root, networks=networks)
    if state_url is not None:
        text = text.replace(f'state = "{root}/state.db"\n', "")
        text += f'\n[state]\nurl = "{state_url}"\n'
    config.write_text(text)
    return parse_site_config(config.read_text(), config)


@dataclass
class Cast:
    """Tokens by role (``anonymous`` has none) and the token ids."""

    tokens: dict[str, str]
    ids: dict[str, int]

    def headers(self, role: str) -> dict[str, str]:
        token = self.tokens.get(role)
        return {"Authorization": f"Bearer {token}"} if token else {}




def wait_job(client: TestClient, href: str, headers: dict[str, str],
             timeout_s: float = 60) -> dict[str, Any]:
    """Poll a job until it ends; its last answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = client.get(href, headers=headers)
        assert answer.status_code == 200, answer.text
        job = answer.json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {href} did not end within {timeout_s} s")

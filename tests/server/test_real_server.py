"""``corral server`` as a real process: uvicorn over TCP, plain and TLS, with httpx.

The TLS certificate is self-signed, made here with the openssl command; the
client trusts exactly that certificate.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_support import LAB, Cast

from corral.ops.session import Session

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def _start(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "corral", "--config", str(config), "server",
                             *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_listening(port: int, process: subprocess.Popen[str], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"corral server exited: {process.communicate()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("corral server did not listen in time")


@pytest.fixture
def tls_server(tmp_path: Path, admin_session: Session) -> Iterator[tuple[str, Path]]:
    cert, key = _certificate(tmp_path)
    port = _free_port()
    config = admin_session.site.source
    assert config is not None
    process = _start(config, "--listen", f"127.0.0.1:{port}", "--tls-cert", str(cert),
                     "--tls-key", str(key))
    try:
        _wait_listening(port, process)
        yield f"https://127.0.0.1:{port}", cert
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_corral_server_serves_the_api_over_tls(tls_server: tuple[str, Path],
                                               cast: Cast) -> None:
    url, cert = tls_server
    with httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=str(cert)),
                      timeout=30) as client:
        assert client.get("/api/v1/whoami").status_code == 401
        me = client.get("/api/v1/whoami", headers=cast.headers("owner"))
        assert me.status_code == 200
        assert me.json() == {"name": "alice", "admin": False, "scope": "full",
                             "source": "127.0.0.1"}
        valid = client.post("/api/v1/validate", headers=cast.headers("owner"),
                            json={"text": LAB})
        assert valid.json() == {"valid": True, "name": "project.corral"}
        hosts = client.get("/api/v1/hosts", headers=cast.headers("owner")).json()
        assert [(h["name"], h["reachable"]) for h in hosts] == [("local", True)]
        assert "corral_service_host_up" in client.get(
            "/metrics", headers=cast.headers("metrics")).text
        assert "/api/v1/projects/up" in client.get("/api/openapi.json").json()["paths"]
    with pytest.raises(httpx.ConnectError):  # an untrusted certificate is refused
        httpx.get(f"{url}/api/v1/whoami", timeout=10)
    with pytest.raises(httpx.RemoteProtocolError):  # no plain HTTP on the TLS port
        httpx.get(url.replace("https", "http") + "/api/v1/whoami", timeout=10)


def test_corral_server_listens_where_the_site_config_says(tmp_path: Path,
                                                          admin_session: Session,
                                                          cast: Cast) -> None:
    config = admin_session.site.source
    assert config is not None
    port = _free_port()
    config.write_text(config.read_text().replace('listen = "127.0.0.1:0"',
                                                 f'listen = "127.0.0.1:{port}"'))
    process = _start(config)
    try:
        _wait_listening(port, process)
        answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/status",
                           headers=cast.headers("reader"), timeout=30)
        assert answer.status_code == 200
        assert answer.json()["service_hosts"][0]["name"] == "local"
    finally:
        process.send_signal(signal.SIGTERM)
        out, _err = process.communicate(timeout=15)
    assert f"corral server on http://127.0.0.1:{port}/api/v1" in out


@pytest.mark.parametrize("args, message", [
    (["--listen", "nowhere"], "give ADDRESS:PORT"),
    (["--listen", "127.0.0.1:70000"], "give ADDRESS:PORT"),
    (["--listen", "127.0.0.1:8080", "--tls-cert", "c.pem"], "give both --tls-cert and --tls-key"),
    (["--listen", "127.0.0.1:8080", "--tls-cert", "c.pem", "--tls-key", "k.pem"],
     "TLS certificate c.pem: no such file"),
])
def test_corral_server_refuses_a_bad_command_line(admin_session: Session, args: list[str],
                                                  message: str) -> None:
    config = admin_session.site.source
    assert config is not None
    process = _start(config, *args)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 7, (out, err)
    assert message in err and "Traceback" not in err


def test_corral_server_says_when_its_port_is_taken(admin_session: Session) -> None:
    config = admin_session.site.source
    assert config is not None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _start(config, "--listen", f"127.0.0.1:{port}")
        out, err = process.communicate(timeout=60)
    assert process.returncode == 4, (out, err)
    assert f"error: cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err

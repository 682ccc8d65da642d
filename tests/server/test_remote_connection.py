"""``corral --server``: a server that cannot be reached, TLS, and credentials.

Each failure is one message naming the URL and an exit code of its own
(13: not reached, 11: not authenticated, 7: a bad option), never a
traceback. HTTPS trusts the system's store or exactly ``--ca-cert``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from remote_support import Ran, corral, free_port, live_server
from server_support import LAB, Cast


def _certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def url(app: FastAPI) -> Iterator[str]:
    with live_server(app) as found:
        yield found


@pytest.fixture
def tls(app: FastAPI, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = _certificate(tmp_path)
    with live_server(app, (cert, key)) as found:
        yield found, cert


def _clean(ran: Ran) -> None:
    assert ran.out == "" and "Traceback" not in ran.err and ran.err.startswith("error: ")


def test_a_server_that_does_not_answer(cast: Cast, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    project = tmp_path / "lab.corral"
    project.write_text(LAB)
    for args in (["status"], ["up", str(project)], ["vm", "console", "lab.web"]):
        ran = corral(["--server", url, *args], {"CORRAL_TOKEN": cast.tokens["admin"]})
        assert ran.code == 13, ran
        _clean(ran)
        assert ran.err.startswith(f"error: cannot reach the server at {url}: ")
        assert "hint: is `corral server` running there" in ran.err


def test_credentials_that_name_nobody(url: str, cast: Cast, tmp_path: Path) -> None:
    for env in ({}, {"CORRAL_TOKEN": "crl_nobody"}, {"CORRAL_TOKEN": "nonsense"}):
        ran = corral(["--server", url, "list"], env)
        assert ran.code == 11, (env, ran)
        _clean(ran)
        assert ran.err.startswith(f"error: {url}: ") and "hint: " in ran.err
    token_file = tmp_path / "token"
    token_file.write_text(cast.tokens["admin"] + "\n")
    assert corral(["--server", url, "--token-file", str(token_file), "list"]).code == 0
    assert corral(["list"], {"CORRAL_SERVER": url, "CORRAL_TOKEN_FILE": str(token_file)}
                  ).code == 0
    missing = corral(["--server", url, "--token-file", str(tmp_path / "none"), "list"])
    assert missing.code == 7 and missing.err.startswith("error: --token-file ")


def test_a_url_that_is_not_one(cast: Cast) -> None:
    ran = corral(["--server", "corral.example:8443", "list"],
                 {"CORRAL_TOKEN": cast.tokens["admin"]})
    assert ran.code == 7
    _clean(ran)


def test_https_trusts_exactly_the_given_certificate(tls: tuple[str, Path], cast: Cast,
                                                    lab: object) -> None:
    url, cert = tls
    token = {"CORRAL_TOKEN": cast.tokens["admin"]}
    untrusted = corral(["--server", url, "hosts"], token)
    assert untrusted.code == 13
    _clean(untrusted)
    assert "TLS" in untrusted.err and "--ca-cert" in untrusted.err
    trusted = corral(["--server", url, "--ca-cert", str(cert), "hosts", "--json"], token)
    assert trusted.code == 0 and '"name": "local"' in trusted.out
    assert corral(["--server", url, "hosts"], {**token, "CORRAL_CA_CERT": str(cert)}).code == 0
    # The console's websocket goes through the same TLS (a project of nobody: not found).
    console = corral(["--server", url, "--ca-cert", str(cert), "vm", "console", "lab.web"],
                     {"CORRAL_TOKEN": cast.tokens["other"]})
    assert (console.code, console.err) == (3, "error: project 'lab' not found\n")
    plain = corral(["--server", url.replace("https://", "http://"), "hosts"], token)
    assert plain.code == 13
    _clean(plain)
    assert corral(["--server", url, "--ca-cert", "/nonexistent.pem", "hosts"], token).code == 7

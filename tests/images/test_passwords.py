"""The password rule: only $ID$ hashes (or crypt:-marked ones) pass through; the rest is hashed."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from passlib.hash import des_crypt, md5_crypt, sha256_crypt, sha512_crypt

from corral.images.passwords import (
    checked_password,
    guest_password,
    is_modular_hash,
    password_problem,
)

SHA512 = (
    "$6$corral$RC/6VSWajUnvcH7JrmGsUe5wLEZIUxPgfXN87qpHZBER5R6LSbeEYo9YyF6QRVx7ZDTxjh"
    ".iBetMa/z8qgI0g/"
)
YESCRYPT = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7"
BCRYPT = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"


@pytest.mark.parametrize(
    "hashed",
    [
        SHA512,
        YESCRYPT,
        BCRYPT,
        md5_crypt.hash("x"),
        sha256_crypt.hash("x"),
        sha512_crypt.using(rounds=6000).hash("x"),  # $6$rounds=6000$salt$hash
    ],
)
def test_modular_hashes_pass_through(hashed: str) -> None:
    assert is_modular_hash(hashed)
    assert guest_password(hashed, "h/demo") == hashed


def test_des_hash_counts_only_with_the_marker() -> None:
    des = "147/Y.NtB9p7w"  # MLN's example hash of kyrre
    plain = guest_password(des, "h/kyrre")
    assert plain.startswith("$6$") and sha512_crypt.verify(des, plain), "unmarked: plain text"
    assert guest_password("crypt:" + des, "h/kyrre") == des
    assert guest_password("crypt:" + SHA512, "h/kyrre") == SHA512


@given(st.text(alphabet="./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
               min_size=13, max_size=13))
def test_a_thirteen_character_plain_password_is_hashed(value: str) -> None:
    hashed = guest_password(value, "h/u")
    assert hashed != value and sha512_crypt.verify(value, hashed)


@pytest.mark.parametrize("value", ["secret", "unique-value-2", "$1$", "$6$salt$", "$HOME", "$6"])
def test_plain_text_is_hashed(value: str) -> None:
    hashed = guest_password(value, "ubuntu/osuser03")
    assert hashed.startswith("$6$") and sha512_crypt.verify(value, hashed)


def test_plain_text_is_hashed_deterministically() -> None:
    hashed = guest_password("unique-value-1", "ubuntu/osuser03")
    assert "unique-value-1" not in hashed
    assert guest_password("unique-value-1", "ubuntu/osuser03") == hashed
    assert guest_password("unique-value-1", "win/osuser03") != hashed


@pytest.mark.parametrize("value", ["crypt:", "crypt:secret", "crypt:147/Y.NtB9p7", "crypt:$6$s$"])
def test_marker_without_a_hash_is_refused(value: str) -> None:
    problem = password_problem(value)
    assert problem is not None and "crypt:" in problem
    with pytest.raises(ValueError):
        checked_password(value)
    with pytest.raises(ValueError):
        guest_password(value, "h/u")


def test_marked_des_hash_is_one_the_system_crypt_accepts() -> None:
    assert des_crypt.verify("kyrre", des_crypt.using(salt="14").hash("kyrre"))
    assert password_problem("crypt:" + des_crypt.using(salt="14").hash("kyrre")) is None
    assert checked_password("plain words") == "plain words"

"""Crypt hashes pass through; plain passwords are hashed, the same way every time."""

from passlib.hash import sha512_crypt

from corral.images.passwords import guest_password, is_crypt_hash


def test_des_and_modular_hashes_pass_through():
    assert guest_password("147/Y.NtB9p7w", "h/kyrre") == "147/Y.NtB9p7w"
    sha = (
        "$6$corral$RC/6VSWajUnvcH7JrmGsUe5wLEZIUxPgfXN87qpHZBER5R6LSbeEYo9YyF6QRVx7ZDTxjh"
        ".iBetMa/z8qgI0g/"
    )
    assert guest_password(sha, "h/demo") == sha


def test_plain_text_is_hashed_deterministically():
    hashed = guest_password("unique-value-1", "ubuntu/osuser03")
    assert hashed.startswith("$6$") and "unique-value-1" not in hashed
    assert sha512_crypt.verify("unique-value-1", hashed)
    assert guest_password("unique-value-1", "ubuntu/osuser03") == hashed
    assert guest_password("unique-value-1", "win/osuser03") != hashed


def test_recognition():
    assert is_crypt_hash("$1$abc$defghijk")
    assert not is_crypt_hash("secret")
    assert not is_crypt_hash("unique-value-2")

"""Password hashes: format, verification, cost, and refusal of unusable values."""

from __future__ import annotations

import base64
import hashlib

import pytest

from hatrac.auth import passwords


def test_hash_format_and_verify():
    stored = passwords.hash_password("correct horse", rounds=1000)
    empty, scheme, rounds, salt, digest = stored.split("$")
    assert (empty, scheme, rounds) == ("", "pbkdf2-sha256", "1000")
    assert "+" not in salt + digest and "=" not in salt + digest  # passlib's ab64
    assert passwords.verify_password("correct horse", stored)
    assert not passwords.verify_password("correct horse ", stored)
    assert not passwords.verify_password("", stored)


def test_hashes_are_salted():
    first = passwords.hash_password("same", rounds=1000)
    second = passwords.hash_password("same", rounds=1000)
    assert first != second
    assert passwords.verify_password("same", first) and passwords.verify_password("same", second)


def test_matches_plain_pbkdf2():
    stored = passwords.hash_password("pw", rounds=1234)
    rounds, salt, digest = passwords.parse_hash(stored)
    assert rounds == 1234
    assert digest == hashlib.pbkdf2_hmac("sha256", b"pw", salt, 1234)


def test_known_passlib_vector():
    # made with the same construction; ab64 uses '.' where base64 has '+'
    salt = b"\xfb" * 16
    digest = hashlib.pbkdf2_hmac("sha256", b"password", salt, 1000)

    def ab64(data: bytes) -> str:
        return base64.b64encode(data).decode().rstrip("=").replace("+", ".")

    stored = f"$pbkdf2-sha256$1000${ab64(salt)}${ab64(digest)}"
    assert "." in stored
    assert passwords.verify_password("password", stored)


@pytest.mark.parametrize(
    "stored",
    [None, "", "plain", "$pbkdf2-sha256$x$abc$def", "$md5$1$a$b", "$pbkdf2-sha256$10$!!$!!"],
)
def test_unusable_stored_values_never_verify(stored):
    assert not passwords.verify_password("anything", stored)


def test_overlong_passwords_are_refused_without_hashing():
    stored = passwords.hash_password("x" * 10, rounds=1000)
    assert not passwords.verify_password("x" * (passwords.MAX_PASSWORD_LENGTH + 1), stored)


def test_unicode_passwords():
    stored = passwords.hash_password("pässwörd ✓", rounds=1000)
    assert passwords.verify_password("pässwörd ✓", stored)
    assert not passwords.verify_password("passwörd ✓", stored)

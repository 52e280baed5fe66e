"""The session cookie's value as the request carries it (hatrac/auth/session.py).

The one cookie alone takes a short path; it must read every header exactly
as the general parse does (each ``;``-separated part, trimmed, by name).
"""

from __future__ import annotations

import pytest

from hatrac.auth.session import session_cookies


def general(header: str, name: str) -> list[str]:
    """The general rule, written out: every part named ``name``, trimmed, unquoted."""
    values = []
    for part in header.split(";"):
        key, equals, value = part.strip().partition("=")
        if equals and key.strip() == name:
            values.append(value.strip().strip('"'))
    return values[:4]


@pytest.mark.parametrize(
    "header",
    [
        "webauthn=abc",
        "webauthn=abc  ",
        'webauthn="abc"',
        "webauthn=",
        "webauthn=a=b",
        "webauthnx=abc",
        " webauthn=abc",
        "webauthn =abc",
        "other=webauthn",
        "x=1; webauthn=abc",
        "webauthn=abc; webauthn=def",
        "webauthn=abc;",
    ],
)
def test_the_one_cookie_alone_reads_as_the_general_parse_does(header):
    assert session_cookies({"HTTP_COOKIE": header}, "webauthn") == general(header, "webauthn")


def test_no_cookie_header_or_no_such_cookie_is_none():
    assert session_cookies({}, "webauthn") == []
    assert session_cookies({"HTTP_COOKIE": "other=1"}, "webauthn") == []

"""Version ids: unique, never reissued, URL-safe and roughly time-ordered.

26 characters of Crockford base32 over 48 bits of milliseconds and 80 random
bits (the ULID layout), so ids sort by creation time and need no coordination
between app servers.
"""

from __future__ import annotations

import base64
import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# RFC 4648's base32 digits, spelled in Crockford's alphabet
_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())


def new_version_id() -> str:
    """A fresh version id."""
    return encode_id((int(time.time() * 1000) << 80) | secrets.randbits(80))


def encode_id(value: int) -> str:
    """The 26 base32 digits of a 128-bit ``value``, most significant first.

    26 digits hold 130 bits, so the first digit's top two bits are zero: the
    value shifted to end on a byte (136 bits) encodes to the same first 26
    digits, by the C encoder."""
    digits = base64.b32encode((value << 6).to_bytes(17, "big"))[:26]
    return digits.translate(_CROCKFORD).decode("ascii")

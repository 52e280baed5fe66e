"""Version ids: unique, never reissued, URL-safe and roughly time-ordered.

26 characters of Crockford base32 over 48 bits of milliseconds and 80 random
bits (the ULID layout), so ids sort by creation time and need no coordination
between app servers.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_version_id() -> str:
    """A fresh version id."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))

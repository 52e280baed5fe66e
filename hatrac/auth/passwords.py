"""Password hashes: salted PBKDF2-SHA256 in ``$pbkdf2-sha256$ROUNDS$SALT$HASH`` form.

The format is passlib's (SALT and HASH in its "adapted base64": ``.`` for
``+``, no padding), so hashes can move to or from passlib-based systems. The
cost (``ROUNDS``) is chosen per hash: raising ``password_hash_rounds`` in the
config applies to new and changed passwords, old hashes keep verifying.
Built on :func:`hashlib.pbkdf2_hmac` and :func:`hmac.compare_digest`; no
home-made cryptography.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Optional

SCHEME = "pbkdf2-sha256"
DEFAULT_ROUNDS = 600_000  # OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256
SALT_BYTES = 16
# longer passwords are refused outright: PBKDF2 pre-hashes long keys, but a
# megabyte "password" is an attack on the server, not a credential
MAX_PASSWORD_LENGTH = 1024


def _ab64_encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=").replace("+", ".")


def _ab64_decode(text: str) -> bytes:
    text = text.replace(".", "+")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def hash_password(password: str, rounds: int = DEFAULT_ROUNDS) -> str:
    """A new salted hash of ``password``."""
    if rounds < 1:
        raise ValueError("rounds must be positive")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, rounds)
    return f"${SCHEME}${rounds}${_ab64_encode(salt)}${_ab64_encode(digest)}"


def parse_hash(stored: str) -> Optional[tuple[int, bytes, bytes]]:
    """(rounds, salt, digest) of a stored hash, or None when it is not one of ours."""
    parts = stored.split("$") if isinstance(stored, str) else []
    if len(parts) != 5 or parts[0] != "" or parts[1] != SCHEME or not parts[2].isdigit():
        return None
    try:
        return int(parts[2]), _ab64_decode(parts[3]), _ab64_decode(parts[4])
    except ValueError:
        return None


def verify_password(password: str, stored: Optional[str]) -> bool:
    """Whether ``password`` matches ``stored``; False for any unusable stored value."""
    parsed = parse_hash(stored) if stored else None
    if parsed is None or not password or len(password) > MAX_PASSWORD_LENGTH:
        return False
    rounds, salt, digest = parsed
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, rounds)
    return hmac.compare_digest(candidate, digest)


def waste_time(rounds: int) -> None:
    """Spend what a verification costs, for unknown users (uniform login timing)."""
    hashlib.pbkdf2_hmac("sha256", b"not a password", b"not a salt value", rounds)

"""HTTP Basic against the built-in accounts, with a short cache of verified credentials.

Password hashes are deliberately slow, and curl or a script sends Basic on
every request, so a verified ``Authorization`` value is remembered for
``basic_cache_secs`` (per process, keyed by an HMAC of the header under a
per-process random key, so the cache never holds a password or a reusable
hash of one). Disabling an account or changing its password therefore
reaches Basic clients within that time. Failures are rate-limited with the
logins (same counters).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from typing import Optional

from ..errors import HatracError
from .accounts import Accounts, Authentication, PasswordRejected, client_of
from .audit import audit
from .base import client_address, refuse

CACHE_LIMIT = 4096


class BasicProvider:
    """Identifies clients by ``Authorization: Basic``."""

    method = "basic"

    def __init__(self, accounts: Accounts, cache_secs: int, trust_forwarded: bool = False) -> None:
        self.accounts = accounts
        self.cache_secs = cache_secs
        self.trust_forwarded = trust_forwarded
        self._key = secrets.token_bytes(32)
        self._cache: dict[bytes, tuple[float, Authentication]] = {}
        self._lock = threading.Lock()

    def identify(self, environ: dict) -> Optional[Authentication]:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        now = time.monotonic()
        key = hmac.new(self._key, header.encode("utf-8", "surrogateescape"), hashlib.sha256)
        cache_key = key.digest()
        cached = self._cache.get(cache_key)
        if cached is not None and cached[0] > now:
            return cached[1]
        address = client_address(environ, self.trust_forwarded)
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            name, colon, password = decoded.partition(":")
            if not colon or not name:
                raise ValueError("no user:password")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise refuse(environ, "Basic", "malformed", self.trust_forwarded) from None
        try:
            identity = self.accounts.check_password(name, password, address)
        except PasswordRejected as rejected:
            audit(
                "login.failure",
                via="basic",
                user=name[:256],
                reason=str(rejected),
                client_address=address,
            )
            raise refuse(environ, "Basic", "wrong user name or password", self.trust_forwarded)
        except HatracError:
            audit("login.throttled", via="basic", user=name[:256], client_address=address)
            raise
        found = Authentication(client_of(identity), "basic")
        if self.cache_secs > 0:
            with self._lock:
                if len(self._cache) >= CACHE_LIMIT:
                    self._cache.clear()
                self._cache[cache_key] = (now + self.cache_secs, found)
        return found

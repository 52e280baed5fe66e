"""Identity from a site's existing webauthn2 service (DERIVA deployments).

In a DERIVA site, ERMrest and Chaise keep using webauthn2 (``/authn`` on the
same host). This provider takes the request's session cookie (``webauthn``)
or ``Authorization: Bearer`` token, asks webauthn2 for that session
(``GET webauthn2_session_url`` with the same credential) and turns the
answer into a client: ``client.id`` is the identity, each ``attributes[].id``
an attribute, so ACLs written for upstream Hatrac (role strings such as
``https://auth.globus.org/<uuid>``) keep their meaning.

Answers are cached per credential for ``webauthn2_cache_secs`` (default 5),
so a logout at webauthn2 is seen here within that time. An unknown session
(webauthn2 answers 401, 403 or 404) is a 401; a webauthn2 that does not
answer, answers late, or answers something that is not a session is a 503
with ``Retry-After``, never anonymous access.
"""

from __future__ import annotations

import hashlib
import json
import logging
import ssl
import threading
import time
import urllib.error
import urllib.request
from typing import Collection, Optional

from ..errors import ServiceUnavailable
from ..model.client import Client
from .accounts import Authentication
from .base import refuse
from .session import SAFE_METHODS, check_same_origin, session_cookies
from .tokens import bearer_value

log = logging.getLogger("hatrac.auth")

RETRY_AFTER = "5"
CACHE_LIMIT = 10000
ANSWER_LIMIT = 1 << 20  # a session document is small; refuse anything absurd


class IdentityServiceError(Exception):
    """webauthn2 could not say who the client is (down, slow, or a malformed answer)."""


def parse_session(document: object) -> Client:
    """The client described by a webauthn2 session document; raises IdentityServiceError."""
    if not isinstance(document, dict):
        raise IdentityServiceError("its session answer is not a JSON object")
    client = document.get("client")
    if isinstance(client, dict):
        identity = client.get("id")
        display = client.get("display_name") or client.get("full_name")
    elif isinstance(client, str):  # older webauthn2 releases: the id itself
        identity, display = client, None
    else:
        raise IdentityServiceError("its session answer has no 'client'")
    if not isinstance(identity, str) or not identity:
        raise IdentityServiceError("its session answer has no 'client.id'")
    raw = document.get("attributes")
    if raw is None and isinstance(client, dict):
        raw = client.get("attributes")
    attributes = set()
    for attribute in raw or []:
        value = attribute.get("id") if isinstance(attribute, dict) else attribute
        if not isinstance(value, str) or not value:
            raise IdentityServiceError("its session answer has an attribute without an 'id'")
        attributes.add(value)
    attributes.discard(identity)
    return Client(
        identity=identity,
        attributes=frozenset(attributes),
        display_name=display if isinstance(display, str) else identity,
    )


class SessionCache:
    """Recent webauthn2 answers by credential hash: a client, or None for an unknown session."""

    def __init__(self, seconds: float, limit: int = CACHE_LIMIT) -> None:
        self.seconds = seconds
        self.limit = limit
        self.entries: dict[str, tuple[float, Optional[Client]]] = {}
        self.lock = threading.Lock()

    def get(self, key: str, now: float) -> tuple[bool, Optional[Client]]:
        with self.lock:
            entry = self.entries.get(key)
        if entry is None or entry[0] <= now:
            return False, None
        return True, entry[1]

    def put(self, key: str, client: Optional[Client], now: float) -> None:
        if self.seconds <= 0:
            return
        with self.lock:
            if len(self.entries) >= self.limit:
                for stale in [k for k, (until, _) in self.entries.items() if until <= now]:
                    del self.entries[stale]
                if len(self.entries) >= self.limit:
                    self.entries.clear()
            self.entries[key] = (now + self.seconds, client)


class Webauthn2Provider:
    """Identifies clients by asking the site's webauthn2 service about their session."""

    method = "webauthn2"

    def __init__(
        self,
        session_url: str,
        cookie_name: str = "webauthn",
        cache_secs: float = 5,
        timeout_secs: float = 5,
        ca_file: Optional[str] = None,
        trust_forwarded: bool = False,
        allowed_origins: Collection[str] = (),
    ) -> None:
        self.session_url = session_url
        self.allowed_origins = frozenset(o for o in allowed_origins if o != "*")
        self.cookie_name = cookie_name
        self.timeout = timeout_secs
        self.cache = SessionCache(cache_secs)
        self.trust_forwarded = trust_forwarded
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def identify(self, environ: dict) -> Optional[Authentication]:
        cookies = session_cookies(environ, self.cookie_name)
        bearer = bearer_value(environ)
        if cookies:
            headers = {"Cookie": "; ".join(f"{self.cookie_name}={v}" for v in cookies)}
        elif bearer:
            headers = {"Authorization": "Bearer " + bearer}
        else:
            return None
        key = hashlib.sha256(json.dumps(headers, sort_keys=True).encode()).hexdigest()
        now = time.monotonic()
        known, client = self.cache.get(key, now)
        if not known:
            client = self._ask(headers)
            self.cache.put(key, client, now)
        if client is None:
            raise refuse(environ, "webauthn2", "unknown or ended session", self.trust_forwarded)
        if cookies and environ.get("REQUEST_METHOD", "GET") not in SAFE_METHODS:
            check_same_origin(environ, client.identity, self.trust_forwarded, self.allowed_origins)
        return Authentication(client, self.method)

    def _ask(self, headers: dict) -> Optional[Client]:
        """The client of that session, None when webauthn2 does not know it."""
        request = urllib.request.Request(
            self.session_url, headers={**headers, "Accept": "application/json"}
        )
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self.context
            ) as answer:
                body = answer.read(ANSWER_LIMIT + 1)
            if len(body) > ANSWER_LIMIT:
                raise IdentityServiceError("its session answer is larger than 1 MiB")
            try:
                document = json.loads(body)
            except ValueError:
                raise IdentityServiceError("its session answer is not JSON") from None
            return parse_session(document)
        except urllib.error.HTTPError as error:
            if error.code in (401, 403, 404):
                return None
            reason = f"it answered {error.code} {error.reason}"
        except IdentityServiceError as error:
            reason = str(error)
        except (OSError, ValueError) as error:  # refused, unreachable, timed out, TLS
            reason = f"it cannot be reached ({getattr(error, 'reason', None) or error})"
        log.error("webauthn2 at %s: %s", self.session_url, reason)
        raise ServiceUnavailable(
            f"The site's login service (webauthn2) cannot say who you are: {reason}. "
            "Please retry shortly.",
            headers={"Retry-After": RETRY_AFTER},
        )

"""Session cookies (webauthn2-compatible), and the CSRF rule for cookie clients.

The cookie (``session_cookie_name``, default ``webauthn``) holds a random
session id; the database holds its SHA-256, the user and the expiry, so a
session works on every worker and server sharing the database, survives
restarts, and ends everywhere at once when deleted.

CSRF: a browser sends the cookie with cross-site requests too. Besides the
cookie's ``SameSite=Lax`` (no cookie on cross-site POST/PUT/DELETE in current
browsers), a cookie-authenticated unsafe request (anything but GET, HEAD,
OPTIONS) that carries an ``Origin`` header, or failing that a ``Referer``,
naming another host than the request's ``Host`` is refused with 403, unless
the Origin is one of ``cors_allowed_origins`` (exactly; ``*`` never counts).
Requests with neither header (curl, scripts, the DERIVA clients) pass: a
browser always sends Origin on cross-site unsafe requests.
"""

from __future__ import annotations

from typing import Collection, Optional
from urllib.parse import urlsplit

from ..errors import Forbidden
from ..model.credentials import DeferredClient
from .accounts import Accounts, Authentication, client_of, secret_hash
from .audit import audit
from .base import client_address, refuse

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def session_cookies(environ: dict, cookie_name: str) -> list[str]:
    """Every value of the session cookie the request carries (browsers may send several)."""
    header = environ.get("HTTP_COOKIE")
    if not header or cookie_name not in header:
        return []
    if ";" not in header and header.startswith(cookie_name + "="):
        # the common case, the one cookie alone: what the loop below makes of it
        return [header[len(cookie_name) + 1 :].strip().strip('"')]
    # parsed here rather than by werkzeug, whose parser fails (500) on bytes that
    # are not UTF-8; a session id is plain ASCII, anything else simply never matches
    values = []
    for part in header.split(";"):
        name, equals, value = part.strip().partition("=")
        if equals and name.strip() == cookie_name:
            values.append(value.strip().strip('"'))
    return values[:4]


def same_origin(environ: dict, allowed_origins: Collection[str] = ()) -> bool:
    """False when Origin (or Referer) names another host:port than the request's Host.

    An Origin listed (exactly) in ``allowed_origins`` counts as our own.
    """
    source = environ.get("HTTP_ORIGIN") or environ.get("HTTP_REFERER")
    if not source:
        return True
    if source != "*" and source in allowed_origins and environ.get("HTTP_ORIGIN"):
        return True
    host = environ.get("HTTP_HOST") or ""
    try:
        origin = urlsplit(source)
    except ValueError:
        return False
    if source == "null" or not origin.netloc:
        return False
    return origin.netloc.lower() == host.lower()


def check_same_origin(
    environ: dict,
    user: str,
    trust_forwarded: bool = False,
    allowed_origins: Collection[str] = (),
) -> None:
    """Refuse (403, audited) a cookie-authenticated unsafe request from another site's page."""
    if same_origin(environ, allowed_origins):
        return
    audit(
        "csrf.refused",
        user=user,
        method=environ.get("REQUEST_METHOD"),
        resource=environ.get("PATH_INFO"),
        origin=(environ.get("HTTP_ORIGIN") or environ.get("HTTP_REFERER") or "")[:200],
        client_address=client_address(environ, trust_forwarded),
    )
    raise Forbidden("A cookie-authenticated request from another site's page is refused (CSRF).")


class SessionProvider:
    """Identifies clients by the session cookie."""

    method = "session"

    def __init__(
        self,
        accounts: Accounts,
        cookie_name: str,
        trust_forwarded: bool = False,
        allowed_origins: Collection[str] = (),
    ) -> None:
        self.accounts = accounts
        self.cookie_name = cookie_name
        self.trust_forwarded = trust_forwarded
        self.allowed_origins = frozenset(o for o in allowed_origins if o != "*")

    def deferred(self, environ: dict) -> Optional[DeferredClient]:
        """A client looked up with the request's name resolution (one round trip for
        both), or None to :meth:`identify` now: no cookie, several cookie values, or
        an unsafe request from another page, whose CSRF refusal names the user."""
        values = session_cookies(environ, self.cookie_name)
        if len(values) != 1:
            return None
        if environ.get("REQUEST_METHOD", "GET") not in SAFE_METHODS and not same_origin(environ):
            return None
        return self.accounts.deferred(
            "session",
            values[0],
            lambda: refuse(
                environ, "session", "unknown, expired or ended session", self.trust_forwarded
            ),
        )

    def identify(self, environ: dict) -> Optional[Authentication]:
        values = session_cookies(environ, self.cookie_name)
        if not values:
            return None
        for value in values:
            identity = self.accounts.session(value)
            if identity is not None:
                break
        else:
            raise refuse(
                environ, "session", "unknown, expired or ended session", self.trust_forwarded
            )
        if environ.get("REQUEST_METHOD", "GET") not in SAFE_METHODS:
            check_same_origin(environ, identity.name, self.trust_forwarded, self.allowed_origins)
        return Authentication(
            client_of(identity),
            "session",
            identity.since,
            identity.expires,
            secret_hash(value),
        )

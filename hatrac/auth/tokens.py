"""Bearer credentials: issued API tokens, and session ids sent as bearer tokens.

API tokens are made by ``hatrac token issue USER`` (shown once, stored as
SHA-256, revocable, optionally expiring). A bearer value that is not a known
API token is also tried as a session id, as webauthn2 clients (credenza)
send their session that way. JWTs (three dot-separated parts) are left to
:mod:`.oidc` when issuers are configured.
"""

from __future__ import annotations

from typing import Optional

from ..model.credentials import DeferredClient
from .accounts import Accounts, Authentication, client_of, secret_hash
from .base import refuse


def bearer_value(environ: dict) -> Optional[str]:
    """The token of ``Authorization: Bearer TOKEN``, '' when malformed, None when absent."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    if not value or " " in value or len(value) > 16384:
        return ""
    return value


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2


class TokenProvider:
    """Identifies clients by an API token (or a session id) in ``Authorization: Bearer``."""

    method = "token"

    def __init__(
        self, accounts: Accounts, jwt_enabled: bool = False, trust_forwarded: bool = False
    ) -> None:
        self.accounts = accounts
        self.jwt_enabled = jwt_enabled
        self.trust_forwarded = trust_forwarded

    def deferred(self, environ: dict) -> Optional[DeferredClient]:
        """A client whose token (or session id) is looked up with the request's name
        resolution, or None to :meth:`identify` now (no bearer value, or a JWT's)."""
        value = bearer_value(environ)
        if not value or (self.jwt_enabled and looks_like_jwt(value)):
            return None
        return self.accounts.deferred(
            "bearer",
            value,
            lambda: refuse(
                environ, "bearer", "unknown, expired or revoked token", self.trust_forwarded
            ),
        )

    def identify(self, environ: dict) -> Optional[Authentication]:
        value = bearer_value(environ)
        if value is None:
            return None
        if value and self.jwt_enabled and looks_like_jwt(value):
            return None  # the JWT provider's
        if value:
            identity = self.accounts.token(value)
            if identity is not None:
                return Authentication(
                    client_of(identity), "token", identity.since, identity.expires
                )
            identity = self.accounts.session(value)
            if identity is not None:
                return Authentication(
                    client_of(identity),
                    "session",
                    identity.since,
                    identity.expires,
                    secret_hash(value),
                )
        raise refuse(environ, "bearer", "unknown, expired or revoked token", self.trust_forwarded)

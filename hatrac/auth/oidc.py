"""OIDC/JWT bearer tokens checked against configured issuers and their JWKS files.

Each entry of ``jwt_issuers`` names an issuer (``iss``), a JWKS file with its
public keys (re-read when the file changes, so key rotation is a file copy),
and optionally the audience to require, the accepted algorithms (asymmetric
only; ``none`` and HMAC are never accepted), the claim giving the identity
(``sub``; ``identity_prefix`` is prepended, e.g. the issuer URL) and a claim
listing groups (each prefixed with ``group_prefix``). Signature, ``exp``,
``nbf``, ``iss`` and ``aud`` are verified by PyJWT.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Optional

from ..config_errors import ConfigError
from ..extras import require
from ..model.client import Client
from .accounts import Authentication
from .base import refuse
from .tokens import bearer_value, looks_like_jwt

ASYMMETRIC = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


@dataclass
class Issuer:
    """A trusted token issuer: its keys, what its tokens must say, how claims map to a client."""

    issuer: str
    jwks_file: str
    audience: Optional[str]
    algorithms: list
    identity_claim: str
    identity_prefix: str
    groups_claim: Optional[str]
    group_prefix: str
    leeway_secs: int


def parse_issuers(entries: list) -> list[Issuer]:
    """Validated issuer settings, or ConfigError naming the problem."""
    issuers = []
    for number, entry in enumerate(entries):
        where = f"config field 'jwt_issuers[{number}]'"
        if not isinstance(entry, dict) or not entry.get("issuer") or not entry.get("jwks_file"):
            raise ConfigError(f"{where} must be an object with 'issuer' and 'jwks_file'")
        known = {
            "issuer",
            "jwks_file",
            "audience",
            "algorithms",
            "identity_claim",
            "identity_prefix",
            "groups_claim",
            "group_prefix",
            "leeway_secs",
        }
        unknown = set(entry) - known
        if unknown:
            raise ConfigError(
                f"{where} has unknown key(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        algorithms = entry.get("algorithms", ["RS256", "ES256", "PS256"])
        bad = [a for a in algorithms if a not in ASYMMETRIC]
        if bad:
            raise ConfigError(f"{where}: algorithms {bad} are not accepted; use {ASYMMETRIC}")
        issuers.append(
            Issuer(
                issuer=entry["issuer"],
                jwks_file=entry["jwks_file"],
                audience=entry.get("audience"),
                algorithms=list(algorithms),
                identity_claim=entry.get("identity_claim", "sub"),
                identity_prefix=entry.get("identity_prefix", ""),
                groups_claim=entry.get("groups_claim"),
                group_prefix=entry.get("group_prefix", ""),
                leeway_secs=int(entry.get("leeway_secs", 30)),
            )
        )
    return issuers


def _jwt():
    """PyJWT (the ``hatrac[oidc]`` extra)."""
    return require("jwt", "jwt_issuers (OIDC/JWT bearer tokens)")


class _KeySet:
    """A JWKS file, re-read when its modification time changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp = None
        self._keys: dict = {}
        self._lock = threading.Lock()

    def key(self, kid: Optional[str]):
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except OSError:
            return None
        if stamp != self._stamp:
            jwt = _jwt()
            with self._lock:
                try:
                    with open(self.path, encoding="utf-8") as handle:
                        keyset = jwt.PyJWKSet.from_json(handle.read())
                    self._keys = {k.key_id: k for k in keyset.keys}
                except (OSError, ValueError, jwt.exceptions.PyJWKSetError):
                    self._keys = {}
                self._stamp = stamp
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)


class JWTProvider:
    """Identifies clients by a signed JWT from a configured issuer."""

    method = "jwt"

    def __init__(self, issuers: list[Issuer], trust_forwarded: bool = False) -> None:
        self.issuers = {issuer.issuer: issuer for issuer in issuers}
        self.keysets = {issuer.issuer: _KeySet(issuer.jwks_file) for issuer in issuers}
        self.trust_forwarded = trust_forwarded
        _jwt()  # fail at start-up, naming the extra, when PyJWT is missing

    def identify(self, environ: dict) -> Optional[Authentication]:
        value = bearer_value(environ)
        if not value or not looks_like_jwt(value):
            return None
        jwt = _jwt()
        try:
            header = jwt.get_unverified_header(value)
            claims = jwt.decode(value, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise refuse(environ, "JWT", "malformed", self.trust_forwarded) from None
        issuer = self.issuers.get(claims.get("iss")) if isinstance(claims, dict) else None
        if issuer is None:
            raise refuse(environ, "JWT", "unknown issuer", self.trust_forwarded)
        if header.get("alg") not in issuer.algorithms:
            raise refuse(environ, "JWT", "algorithm not accepted", self.trust_forwarded)
        key = self.keysets[issuer.issuer].key(header.get("kid"))
        if key is None:
            raise refuse(environ, "JWT", "unknown signing key", self.trust_forwarded)
        try:
            claims = jwt.decode(
                value,
                key.key,
                algorithms=issuer.algorithms,
                audience=issuer.audience,
                issuer=issuer.issuer,
                leeway=issuer.leeway_secs,
                options={"require": ["exp", "iss"], "verify_aud": issuer.audience is not None},
            )
        except jwt.PyJWTError as error:
            raise refuse(environ, "JWT", type(error).__name__, self.trust_forwarded) from None
        subject = claims.get(issuer.identity_claim)
        if not isinstance(subject, str) or not subject:
            raise refuse(environ, "JWT", "no identity claim", self.trust_forwarded)
        groups = claims.get(issuer.groups_claim, []) if issuer.groups_claim else []
        if isinstance(groups, str):
            groups = [groups]
        attributes = frozenset(issuer.group_prefix + g for g in groups if isinstance(g, str) and g)
        name = claims.get("name") or claims.get("preferred_username") or subject
        client = Client(
            identity=issuer.identity_prefix + subject,
            attributes=attributes,
            display_name=str(name),
        )
        return Authentication(client, "jwt", claims.get("iat"), claims.get("exp"))

"""Authentication: who the client is, per request.

A provider looks at a request's WSGI environ and returns the client when it
recognizes credentials, or None to let the next provider try.
:class:`Authenticator` runs the configured providers in order
(``authn_providers``); a request nobody recognizes is anonymous. Providers
that find credentials they cannot accept raise
:class:`~hatrac.errors.Unauthenticated`, so a bad password, a forged cookie
or a revoked token is a 401 rather than a silent downgrade to anonymous.

Modules: :mod:`.base` (interface, chain), :mod:`.trusted` (REMOTE_USER from
the web server), :mod:`.accounts` (built-in users, groups, sessions, API
tokens), :mod:`.passwords` (PBKDF2 hashes), :mod:`.session` (the cookie and
CSRF), :mod:`.basic`, :mod:`.tokens` (Bearer API tokens), :mod:`.oidc`
(JWTs), :mod:`.webauthn2` (a site's webauthn2 service), :mod:`.audit` (the
audit log). A new provider is a class with ``identify(environ)``, added to
:func:`build_authenticator`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Authenticator, Provider
from .trusted import TrustedFrontEnd

if TYPE_CHECKING:
    from ..config import Config
    from ..model.directory import Directory

__all__ = ["Authenticator", "Provider", "TrustedFrontEnd", "build_authenticator"]


def build_authenticator(config: Config, directory: Directory) -> Authenticator:
    """The provider chain the config asks for, over the service database."""
    from .accounts import Accounts
    from .basic import BasicProvider
    from .oidc import JWTProvider, parse_issuers
    from .session import SessionProvider
    from .tokens import TokenProvider

    trust = config.trust_forwarded_headers
    accounts = Accounts(directory, config)
    issuers = parse_issuers(config.jwt_issuers)
    use_jwt = "jwt" in config.authn_providers and bool(issuers)
    providers = []
    for name in config.authn_providers:
        if name == "trusted" and config.trusted_remote_user:
            providers.append(
                TrustedFrontEnd(config.trusted_groups_environ, config.trusted_groups_separator)
            )
        elif name == "token":
            providers.append(TokenProvider(accounts, use_jwt, trust))
        elif name == "jwt" and use_jwt:
            providers.append(JWTProvider(issuers, trust))
        elif name == "basic":
            providers.append(BasicProvider(accounts, config.basic_cache_secs, trust))
        elif name == "session":
            providers.append(
                SessionProvider(
                    accounts, config.session_cookie_name, trust, config.cors_allowed_origins
                )
            )
        elif name == "webauthn2":
            from .webauthn2 import Webauthn2Provider

            providers.append(
                Webauthn2Provider(
                    config.webauthn2_session_url,
                    config.session_cookie_name,
                    config.webauthn2_cache_secs,
                    config.webauthn2_timeout_secs,
                    config.webauthn2_ca_file,
                    trust,
                    config.cors_allowed_origins,
                )
            )
    authenticator = Authenticator(providers, trust)
    authenticator.accounts = accounts
    return authenticator

"""The provider interface, the chain that runs providers in order, and request facts.

A provider's ``identify(environ)`` returns an
:class:`~hatrac.auth.accounts.Authentication` (or a bare
:class:`~hatrac.model.client.Client`) when it recognizes the request's
credentials, None when the request carries none of its kind, and raises
:class:`~hatrac.errors.Unauthenticated` when it finds credentials of its kind
that it cannot accept. The chain stores how the request was authenticated in
``environ["hatrac.authn"]`` for the ``/authn/session`` resource.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Optional, Protocol, Union

from ..errors import Unauthenticated
from ..model.client import ANONYMOUS, Client
from .audit import audit

if TYPE_CHECKING:
    from ..model.credentials import DeferredClient
    from .accounts import Authentication

ENVIRON_KEY = "hatrac.authn"


class Provider(Protocol):
    """Something that can identify a client from a request environ."""

    def identify(self, environ: dict) -> Optional[Union[Client, object]]:
        """The client (or its Authentication) when recognized, else None."""


def client_address(environ: dict, trust_forwarded: bool = False) -> str:
    """The client's address: the socket peer, or X-Forwarded-For's last hop if trusted."""
    if trust_forwarded:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1][:64]
    return str(environ.get("REMOTE_ADDR") or "-")[:64]


def is_https(environ: dict, trust_forwarded: bool = False) -> bool:
    """Whether the client talks HTTPS to us (or to our trusted proxy).

    Forwarded headers count only with ``trust_forwarded_headers``. gunicorn
    rewrites ``wsgi.url_scheme`` from ``X-Forwarded-Proto`` for peers in its
    ``forwarded_allow_ips`` (loopback by default), so under gunicorn the
    socket itself says whether the connection is TLS.
    """
    if trust_forwarded and environ.get("HTTP_X_FORWARDED_PROTO", "").lower() == "https":
        return True
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        return isinstance(sock, ssl.SSLSocket)
    return environ.get("wsgi.url_scheme") == "https"


def refuse(
    environ: dict, provider: str, reason: str, trust_forwarded: bool = False
) -> Unauthenticated:
    """Audit a refused credential and return the 401 to raise."""
    audit(
        "authn.failure",
        provider=provider,
        reason=reason,
        method=environ.get("REQUEST_METHOD"),
        resource=environ.get("PATH_INFO"),
        client_address=client_address(environ, trust_forwarded),
    )
    return Unauthenticated(f"The {provider} credential of this request is not accepted: {reason}.")


class Authenticator:
    """Runs providers in order; the first to recognize the request wins."""

    def __init__(self, providers: list, trust_forwarded: bool = False) -> None:
        self.providers = list(providers)
        self.trust_forwarded = trust_forwarded

    def authenticate(
        self, environ: dict, defer: bool = False
    ) -> Optional[Union[Authentication, DeferredClient]]:
        """The request's Authentication (None for anonymous); raises 401 on bad credentials.

        With ``defer``, a provider that can (``deferred``) may answer with a
        DeferredClient instead, which is returned as is and not remembered.
        """
        from .accounts import Authentication

        cached = environ.get(ENVIRON_KEY)
        if cached is not None:
            return cached or None
        for provider in self.providers:
            deferred = getattr(provider, "deferred", None) if defer else None
            if deferred is not None:
                client = deferred(environ)
                if client is not None:
                    return client
            found = provider.identify(environ)
            if found is not None:
                if isinstance(found, Client):
                    found = Authentication(found, getattr(provider, "method", "trusted"))
                environ[ENVIRON_KEY] = found
                return found
        if environ.get("HTTP_AUTHORIZATION"):
            # an Authorization header that no provider took: malformed, or of a
            # scheme this service does not accept; never a silent anonymous
            scheme = environ["HTTP_AUTHORIZATION"].split(" ", 1)[0][:20]
            raise refuse(
                environ, "Authorization", f"unsupported scheme {scheme!r}", self.trust_forwarded
            )
        environ[ENVIRON_KEY] = False
        return None

    def identify(self, environ: dict) -> Client:
        found = self.authenticate(environ)
        return found.client if found is not None else ANONYMOUS

    def identify_deferred(self, environ: dict) -> Union[Client, DeferredClient]:
        """Like :meth:`identify`, but a session or token credential may come back as a
        :class:`~hatrac.model.credentials.DeferredClient`, looked up by the request's
        first name resolution (same round trip); the providers keep their order."""
        from .accounts import Authentication

        found = self.authenticate(environ, defer=True)
        if found is None:
            return ANONYMOUS
        return found.client if isinstance(found, Authentication) else found

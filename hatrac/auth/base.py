"""The provider interface and the chain that runs providers in order."""

from __future__ import annotations

from typing import Optional, Protocol

from ..model.client import ANONYMOUS, Client


class Provider(Protocol):
    """Something that can identify a client from a request environ."""

    def identify(self, environ: dict) -> Optional[Client]:
        """A client when this provider recognizes the request's credentials, else None."""


class Authenticator:
    """Runs providers in order; the first to recognize the request wins."""

    def __init__(self, providers: list):
        self.providers = list(providers)

    def identify(self, environ: dict) -> Client:
        for provider in self.providers:
            client = provider.identify(environ)
            if client is not None:
                return client
        return ANONYMOUS

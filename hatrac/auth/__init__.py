"""Authentication: who the client is, per request.

A provider looks at a request's WSGI environ and returns a
:class:`~hatrac.model.client.Client` when it recognizes credentials, or
None to let the next provider try. :class:`Authenticator` runs the
configured providers in order; a request nobody recognizes is anonymous.
Providers that find credentials they cannot accept raise
:class:`~hatrac.errors.Unauthenticated`, so a bad password is a 401 rather
than a silent downgrade to anonymous.
"""

from __future__ import annotations

from .base import Authenticator, Provider
from .trusted import TrustedFrontEnd

__all__ = ["Authenticator", "Provider", "TrustedFrontEnd"]

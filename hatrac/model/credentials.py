"""A credential lookup that travels with the request's first name resolution.

A request with a session cookie (or an API token) would otherwise cost one
database round trip for the credential and another for the name. Instead the
authentication layer hands the model a :class:`DeferredClient`, and registers
its :class:`PendingLookup` for the request (:func:`deferring`); the
directory's name resolution then fetches the credential's identity in the
same statement (:meth:`~hatrac.model.directory.sql.Transaction.resolve`).
Nothing is cached: every request still asks the database, so a logout or a
revoked token is refused by the very next request on every server.

Whatever reads the client's identity first gets it right: if no name was
resolved yet, the lookup runs on its own (inside the open transaction when
there is one). An unknown, expired or ended credential raises the 401 its
provider would have raised, before the name's rows are even looked at.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from typing import Any, Callable, Iterator, Optional

from .client import Client

_PENDING: contextvars.ContextVar[Optional[PendingLookup]] = contextvars.ContextVar(
    "hatrac_pending_credential", default=None
)


class PendingLookup:
    """A session or bearer credential whose identity is not fetched yet.

    ``kind`` is ``"session"`` (a cookie: sessions only) or ``"bearer"`` (an
    API token, else a session id); ``key`` is the SHA-256 of the secret.
    ``make_client`` turns the identity into the ACL client and ``refuse``
    builds the (audited) 401 for a credential that matches nothing live.
    """

    def __init__(
        self,
        kind: str,
        key: str,
        directory: Any,
        make_client: Callable[[Any], Client],
        refuse: Callable[[], Exception],
    ):
        self.kind = kind
        self.key = key
        self.now = time.time()
        self.directory = directory
        self.make_client = make_client
        self.refuse = refuse
        self.done = False
        self.identity: Any = None
        self.open_transaction: Any = None  # set by the directory while one is open

    def settle(self, identity: Any) -> None:
        """Record the looked-up identity; raise the 401 when there is none."""
        self.done = True
        self.identity = identity
        if identity is None:
            raise self.refuse()

    def fetch(self) -> None:
        """Look the credential up now (no name resolution carried it)."""
        from .directory.accounts import credential_identity

        if self.done:
            if self.identity is None:
                raise self.refuse()
            return
        tx = self.open_transaction
        if tx is not None:
            identity = credential_identity(tx, self.kind, self.key, self.now)
        else:
            identity = self.directory.run(
                lambda tx: credential_identity(tx, self.kind, self.key, self.now)
            )
        self.settle(identity)


def pending() -> Optional[PendingLookup]:
    """The request's credential lookup still to be made, if any."""
    lookup = _PENDING.get()
    return lookup if lookup is not None and not lookup.done else None


@contextlib.contextmanager
def deferring(client: Any) -> Iterator[None]:
    """While serving one request: let name resolutions carry ``client``'s lookup."""
    lookup = getattr(client, "lookup", None)
    token = _PENDING.set(lookup)
    try:
        yield
    finally:
        _PENDING.reset(token)


class DeferredClient:
    """A client (same attributes as :class:`~hatrac.model.client.Client`) known on first use."""

    def __init__(self, lookup: PendingLookup):
        self.lookup = lookup
        self._client: Optional[Client] = None

    def resolved(self) -> Client:
        """The real client; looks the credential up if no name resolution did (401 if dead)."""
        if self._client is None:
            self.lookup.fetch()
            self._client = self.lookup.make_client(self.lookup.identity)
        return self._client

    @property
    def identity(self) -> Optional[str]:
        return self.resolved().identity

    @property
    def attributes(self) -> frozenset:
        return self.resolved().attributes

    @property
    def display_name(self) -> Optional[str]:
        return self.resolved().display_name

    @property
    def roles(self) -> frozenset:
        return self.resolved().roles

    @property
    def is_anonymous(self) -> bool:
        return self.resolved().is_anonymous

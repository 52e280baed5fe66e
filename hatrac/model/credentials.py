"""A credential lookup that travels with the request's first name resolution.

A request with a session cookie (or an API token) would otherwise cost one
database round trip for the credential and another for the name. Instead the
authentication layer hands the model a :class:`DeferredClient`, and registers
its :class:`PendingLookup` for the request (:func:`deferring`); the
directory's name resolution then fetches the credential's identity in the
same statement (:meth:`~hatrac.model.directory.sql.Transaction.resolve`).

Every request reads the accounts' generation. What a process remembers
(:class:`IdentityMemo`) is the identity and client of each credential it saw
live lately, with the generation read beside it. The statement is given that
generation and skips the credential's row, its user and group closure while
the database's is the same and the expiry held is still ahead. Every change
that can end or shorten a credential or change its user (a logout, a
password change, a revoked or deleted token, a disable, a membership, a
session deleted in SQL) increments it in its own transaction (triggers), so
it is seen by the very next request on every server. A held identity whose
expiry has come is never trusted from memory: the row is read (it may have
been extended). No notification is involved: the check is part of the
statement.

Whatever reads the client's identity first gets it right: if no name was
resolved yet, the lookup runs on its own (inside the open transaction when
there is one). An unknown, expired or ended credential raises the 401 its
provider would have raised, before the name's rows are even looked at.
"""

from __future__ import annotations

import contextvars
import hashlib
import time
from typing import Any, Callable, Optional

from .client import Client


def secret_hash(value: str) -> str:
    """What is stored for a high-entropy secret (session id, API token)."""
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def memo_key(kind: str, secret: str) -> bytes:
    """What :class:`IdentityMemo` knows a ``kind`` credential by: a tag and the
    BLAKE2b digest of its secret.

    Not :func:`secret_hash`: in a busy worker, OpenSSL's SHA-256 costs a
    request about twice what Python's own BLAKE2 does (docs/benchmark.md);
    the SHA-256 the statement takes is remembered with the identity.
    """
    digest = hashlib.blake2b(secret.encode("utf-8", "surrogateescape"), digest_size=32)
    return _MEMO_TAG[kind] + digest.digest()


_MEMO_TAG = {"session": b"s", "bearer": b"b"}

_PENDING: contextvars.ContextVar[Optional[PendingLookup]] = contextvars.ContextVar(
    "hatrac_pending_credential", default=None
)


class IdentityMemo:
    """What one process remembers of the credentials it saw lately, bounded.

    Keyed by :func:`memo_key`; each entry is the tuple
    ``(generation, identity, client, key)`` (``key``: the secret's
    :func:`secret_hash`, which the statement takes) that
    :meth:`PendingLookup.settle` makes and
    :func:`~hatrac.model.directory.accounts.identity_of_row` reads. An entry
    is never trusted alone: it only lets the statement skip the credential's
    row, its user and group closure while the accounts' generation has not
    moved and the identity's expiry is ahead. No lock (a forked worker
    inherits none held): each operation is one dictionary step, and the size
    bound is kept loosely when threads race.
    """

    LIMIT = 4096

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._entries: dict[bytes, tuple] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Optional[tuple]:
        return self._entries.get(key)

    def put(self, key: bytes, entry: tuple) -> None:
        entries = self._entries
        if len(entries) >= self.limit and key not in entries:
            try:
                del entries[next(iter(entries))]  # the oldest
            except (KeyError, RuntimeError, StopIteration):
                pass  # another thread changed it meanwhile
        entries[key] = entry

    def forget(self, key: bytes) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


class PendingLookup:
    """A session or bearer credential whose identity is not fetched yet.

    ``kind`` is ``"session"`` (a cookie: sessions only) or ``"bearer"`` (an
    API token, else a session id); ``secret`` its value, whose SHA-256
    (:attr:`key`) the database knows.
    ``make_client`` turns the identity into the ACL client and ``refuse``
    builds the (audited) 401 for a credential that matches nothing live.
    ``memo``: the process's :class:`IdentityMemo`, if it keeps one.
    """

    __slots__ = (
        "kind",
        "secret",
        "_key",
        "now",
        "directory",
        "make_client",
        "refuse",
        "memo",
        "memo_key",
        "held",
        "known",
        "done",
        "identity",
        "client",
        "open_transaction",
    )

    def __init__(
        self,
        kind: str,
        secret: str,
        directory: Any,
        make_client: Callable[[Any], Client],
        refuse: Callable[[], Exception],
        memo: Optional[IdentityMemo] = None,
    ) -> None:
        self.kind = kind
        self.secret = secret
        self._key: Optional[str] = None
        self.now = time.time()
        self.directory = directory
        self.make_client = make_client
        self.refuse = refuse
        self.memo = memo
        self.memo_key = key = memo_key(kind, secret)
        # what this process knew of the credential (trusted only as the statement says)
        held = memo.get(key) if memo is not None else None
        self.held: Optional[tuple] = held
        # the generation at which the statement may skip the credential; none (-1)
        # once the expiry held has passed: an expired identity is never trusted
        # from memory, the row is read (it may have been extended)
        self.known = -1
        if held is not None:
            self._key = held[3]
            expires = held[1].expires
            if expires is None or self.now < expires:
                self.known = held[0]
        self.done = False
        self.identity: Any = None
        self.client: Optional[Client] = None
        self.open_transaction: Any = None  # set by the directory while one is open

    @property
    def key(self) -> str:
        """The SHA-256 of the secret, by which the database knows it: remembered
        with the identity, made only for a credential not remembered."""
        key = self._key
        if key is None:
            key = self._key = secret_hash(self.secret)
        return key

    def settle(self, identity: Any, generation: Optional[int] = None) -> None:
        """Record the looked-up identity; raise the 401 when there is none.

        ``generation``: the accounts' generation the statement read with it,
        when it came from a name resolution (the identity is then remembered).
        """
        self.done = True
        self.identity = identity
        memo = self.memo
        if identity is None:
            if self.held is not None:
                memo.forget(self.memo_key)
            raise self.refuse()
        held = self.held
        if held is not None and identity is held[1]:
            self.client = held[2]
        elif memo is not None and generation is not None:
            self.client = self.make_client(identity)
            memo.put(self.memo_key, (generation, identity, self.client, self.key))

    def fetch(self) -> None:
        """Look the credential up now (no name resolution carried it)."""
        if self.done:
            if self.identity is None:
                raise self.refuse()
            return
        from .directory.accounts import credential_identity

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


class deferring:
    """While serving one request: let name resolutions carry ``client``'s lookup.

    A class rather than a generator-based context manager: entered once per
    authenticated request, it costs a fifth of one.
    """

    __slots__ = ("_lookup", "_token")

    def __init__(self, client: Any) -> None:
        self._lookup = getattr(client, "lookup", None)

    def __enter__(self) -> None:
        self._token = _PENDING.set(self._lookup)

    def __exit__(self, *exc: Any) -> None:
        _PENDING.reset(self._token)


class DeferredClient:
    """A client (same attributes as :class:`~hatrac.model.client.Client`) known on first use."""

    __slots__ = ("lookup", "_client")

    def __init__(self, lookup: PendingLookup) -> None:
        self.lookup = lookup
        self._client: Optional[Client] = None

    def resolved(self) -> Client:
        """The real client; looks the credential up if no name resolution did (401 if dead)."""
        if self._client is None:
            lookup = self.lookup
            lookup.fetch()
            self._client = lookup.client or lookup.make_client(lookup.identity)
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

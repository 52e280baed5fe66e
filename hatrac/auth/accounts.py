"""Built-in accounts over the service database: logins, sessions, API tokens, admin.

:class:`Accounts` is what the providers, the ``/authn/session`` resource and
the command line use. It holds the policy (hash cost, session lifetime,
failure limits); the SQL is in :mod:`hatrac.model.directory.accounts`.

Roles: a built-in user's identity is its plain name (``alice``); each group
containing it, directly or through nested groups, adds the attribute
``g:GROUP`` (:data:`GROUP_PREFIX`). ACL entries name either.

Secrets: session ids and API tokens are 256-bit values from :mod:`secrets`;
only their SHA-256 is stored, so a database dump logs nobody in.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from ..errors import BadRequest, Conflict, NotFound, TooManyRequests
from ..model.client import Client
from ..model.credentials import DeferredClient, IdentityMemo, PendingLookup, secret_hash
from ..model.directory import accounts as sql
from ..model.directory.accounts import Identity, Token, User
from . import passwords

if TYPE_CHECKING:
    from ..config import Config
    from ..model.directory import Directory, Transaction

GROUP_PREFIX = "g:"
TOKEN_PREFIX = "hatrac_"
# the longest lifetime an API token may be given: a century (of 365-day years);
# a token given none never expires
MAX_TOKEN_LIFETIME = 100 * 365 * 24 * 3600


@dataclass(frozen=True)
class Authentication:
    """How a request was authenticated: the client and its credential's lifetime."""

    client: Client
    method: str  # 'session', 'token', 'basic', 'jwt' or 'trusted'
    since: Optional[float] = None
    expires: Optional[float] = None
    session_hash: Optional[str] = None  # set for sessions (cookie or bearer)


def client_of(identity: Identity) -> Client:
    """The ACL-matching client of a built-in user."""
    return Client(
        identity=identity.name,
        attributes=frozenset(GROUP_PREFIX + group for group in identity.groups),
        display_name=identity.display_name or identity.name,
    )


def _valid_name(kind: str, name: str) -> str:
    if not name or len(name) > 256 or name != name.strip() or any(ord(c) < 32 for c in name):
        raise BadRequest(f"A {kind} name must be 1-256 printable characters without edge spaces.")
    if name.startswith(GROUP_PREFIX) or name == "*":
        raise BadRequest(f"A {kind} name may not be '*' or start with {GROUP_PREFIX!r}.")
    return name


class Accounts:
    """Users, groups, sessions and tokens of one service database."""

    def __init__(self, directory: Directory, config: Config) -> None:
        self.directory = directory
        self.rounds = config.password_hash_rounds
        self.session_expiry = config.session_expiry_secs
        self.failure_window = config.login_failure_window_secs
        self.max_account_failures = config.login_max_failures_per_account
        self.max_address_failures = config.login_max_failures_per_address
        self.cache = IdentityCache(directory, config.session_cache_secs)
        # the group closures and clients of credentials seen lately (model/credentials.py)
        self.memo = IdentityMemo()

    def close(self) -> None:
        self.cache.close()

    # -- credentials ---------------------------------------------------------------
    def check_password(self, name: str, password: str, address: Optional[str]) -> Identity:
        """The identity of ``name`` when ``password`` is right; uniform failures.

        Raises TooManyRequests when the account or the address failed too often
        lately, and :class:`PasswordRejected` (a 401) otherwise. Unknown users
        pay the same hash cost as known ones.
        """
        now = time.time()
        keys = ["user:" + name[:256], "address:" + (address or "-")]
        counts = self.directory.run(
            lambda tx: sql.count_failures(tx, keys, now - self.failure_window)
        )
        if (
            counts[keys[0]] >= self.max_account_failures
            or counts[keys[1]] >= self.max_address_failures
        ):
            raise TooManyRequests(
                "Too many failed logins for this account or address; try again later.",
                headers={"Retry-After": str(self.failure_window)},
            )
        user = self.directory.run(lambda tx: sql.get_user(tx, name)) if name else None
        usable = 0 < len(password) <= passwords.MAX_PASSWORD_LENGTH
        if user is None or not user.password_hash:
            if usable:
                passwords.waste_time(self.rounds)
            ok = False
        else:
            ok = usable and passwords.verify_password(password, user.password_hash)
        identity = None
        if ok and not user.disabled:
            identity = self.directory.run(lambda tx: sql.user_identity(tx, name))
        if identity is None:
            self.directory.run(
                lambda tx: sql.record_failures(tx, keys, now, now - self.failure_window),
                write=True,
                serializable=False,
            )
            raise PasswordRejected("disabled" if ok else "bad user name or password")
        self.directory.run(lambda tx: sql.clear_failures(tx, keys[0]), write=True)
        return identity

    # -- sessions ------------------------------------------------------------------
    def open_session(self, identity: Identity, address: Optional[str]) -> tuple[str, float, float]:
        """A new session: (secret id for the cookie, since, expires)."""
        import secrets

        session_id = secrets.token_urlsafe(32)
        since = time.time()
        expires = since + self.session_expiry

        def work(tx: Transaction) -> None:
            sql.create_session(
                tx, secret_hash(session_id), identity.user_id, since, expires, address
            )
            sql.delete_expired_sessions(tx, since)

        self.directory.run(work, write=True, serializable=False)
        return session_id, since, expires

    def session(self, session_id: str) -> Optional[Identity]:
        """The identity of a live session, or None (expired, ended, unknown, forged)."""
        if not session_id or len(session_id) > 256:
            return None
        key = secret_hash(session_id)
        now = time.time()
        return self.cache.lookup(
            "s" + key, lambda: self.directory.run(lambda tx: sql.session_identity(tx, key, now))
        )

    def deferred(
        self, kind: str, secret: str, refuse: Callable[[], Exception]
    ) -> Optional[DeferredClient]:
        """A client whose ``kind`` credential (``session`` or ``bearer``) is looked up
        with the request's first name resolution, or None when that cannot apply
        (an identity cache is on, or the value cannot be a secret of ours)."""
        if self.cache.enabled or not secret or len(secret) > 256:
            return None
        return DeferredClient(
            PendingLookup(kind, secret, self.directory, client_of, refuse, self.memo)
        )

    def extend_session(self, session_hash: str) -> Optional[float]:
        """Push a live session's expiry to now + lifetime; its new expiry, or None."""
        now = time.time()
        expires = now + self.session_expiry
        ok = self.directory.run(
            lambda tx: sql.extend_session(tx, session_hash, expires, now), write=True
        )
        self.cache.forget("s" + session_hash)
        return expires if ok else None

    def end_session(self, session_hash: str) -> bool:
        ended = self.directory.run(lambda tx: sql.delete_session(tx, session_hash), write=True)
        self.cache.clear()
        return ended

    # -- API tokens ----------------------------------------------------------------
    def token(self, token: str) -> Optional[Identity]:
        if not token or len(token) > 256:
            return None
        now = time.time()
        key = secret_hash(token)
        return self.cache.lookup(
            "t" + key, lambda: self.directory.run(lambda tx: sql.token_identity(tx, key, now))
        )

    def issue_token(
        self, user_name: str, expires_in: Optional[int] = None, description: Optional[str] = None
    ) -> tuple[int, str]:
        """A new API token for a user: (id, secret value shown once).

        ``expires_in`` (seconds, 1 to :data:`MAX_TOKEN_LIFETIME`) bounds its life;
        without it the token never expires.
        """
        import secrets

        if expires_in is not None and not 1 <= expires_in <= MAX_TOKEN_LIFETIME:
            raise BadRequest(
                f"expires_in must be from 1 to {MAX_TOKEN_LIFETIME} seconds (a century); "
                "without it the token never expires."
            )

        value = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        expires = now + expires_in if expires_in else None

        def work(tx: Transaction) -> int:
            user = sql.get_user(tx, user_name)
            if user is None:
                raise NotFound(f"No user named {user_name!r}.")
            return sql.create_token(tx, secret_hash(value), user.id, description, now, expires)

        return self.directory.run(work, write=True), value

    def revoke_token(self, token_id: int, user_name: Optional[str] = None) -> bool:
        """Revoke a token (only one of ``user_name``'s when given); whether one was live."""

        def work(tx: Transaction) -> bool:
            if user_name is None:
                return sql.revoke_token(tx, token_id)
            user = sql.get_user(tx, user_name)
            return user is not None and sql.revoke_token(tx, token_id, user.id)

        revoked = self.directory.run(work, write=True)
        self.cache.clear()
        return revoked

    def tokens(self, user_name: Optional[str] = None) -> list[Token]:
        def work(tx: Transaction) -> list[Token]:
            if user_name is None:
                return sql.list_tokens(tx)
            user = sql.get_user(tx, user_name)
            if user is None:
                raise NotFound(f"No user named {user_name!r}.")
            return sql.list_tokens(tx, user.id)

        return self.directory.run(work)

    # -- administration ------------------------------------------------------------
    def add_user(
        self, name: str, password: Optional[str] = None, display_name: Optional[str] = None
    ) -> User:
        _valid_name("user", name)
        hashed = self._hash(password) if password is not None else None
        user = self.directory.run(
            lambda tx: sql.add_user(tx, name, display_name, hashed, time.time()), write=True
        )
        if user is None:
            raise Conflict(f"A user named {name!r} exists already.")
        return user

    def _hash(self, password: str) -> str:
        if not password:
            raise BadRequest("The password may not be empty.")
        if len(password) > passwords.MAX_PASSWORD_LENGTH:
            raise BadRequest(
                f"The password may be at most {passwords.MAX_PASSWORD_LENGTH} characters."
            )
        return passwords.hash_password(password, self.rounds)

    def set_password(self, name: str, password: str) -> None:
        hashed = self._hash(password)
        if not self.directory.run(lambda tx: sql.set_password(tx, name, hashed), write=True):
            raise NotFound(f"No user named {name!r}.")

    def set_disabled(self, name: str, disabled: bool) -> None:
        if not self.directory.run(lambda tx: sql.set_disabled(tx, name, disabled), write=True):
            raise NotFound(f"No user named {name!r}.")

    def remove_user(self, name: str) -> None:
        if not self.directory.run(lambda tx: sql.remove_user(tx, name), write=True):
            raise NotFound(f"No user named {name!r}.")

    def users(self) -> list[User]:
        return self.directory.run(sql.list_users)

    def groups_of(self, name: str) -> list[str]:
        def work(tx: Transaction) -> list[str]:
            user = sql.get_user(tx, name)
            if user is None:
                raise NotFound(f"No user named {name!r}.")
            return sql.groups_of_user(tx, user.id)

        return self.directory.run(work)

    def add_group(self, name: str) -> None:
        name = _group_name(name)
        _valid_name("group", name)
        if not self.directory.run(lambda tx: sql.add_group(tx, name, time.time()), write=True):
            raise Conflict(f"A group named {name!r} exists already.")

    def remove_group(self, name: str) -> None:
        name = _group_name(name)
        if not self.directory.run(lambda tx: sql.remove_group(tx, name), write=True):
            raise NotFound(f"No group named {name!r}.")

    def groups(self) -> list[tuple[str, list[str], list[str]]]:
        return self.directory.run(sql.list_groups)

    def change_membership(self, group: str, member: str, add: bool) -> bool:
        """Add or remove ``member`` (a user, or a group as ``g:NAME`` or a plain
        name that is not a user) to/from ``group``; whether anything changed."""
        group = _group_name(group)

        def work(tx: Transaction) -> bool:
            container = sql.group_id(tx, group)
            if container is None:
                raise NotFound(f"No group named {group!r}.")
            user = None if member.startswith(GROUP_PREFIX) else sql.get_user(tx, member)
            if user is not None:
                change = sql.add_user_to_group if add else sql.remove_user_from_group
                return change(tx, container, user.id)
            inner = sql.group_id(tx, _group_name(member))
            if inner is None:
                raise NotFound(f"No user or group named {member!r}.")
            change = sql.add_group_to_group if add else sql.remove_group_from_group
            return change(tx, container, inner)

        return self.directory.run(work, write=True)


def _group_name(name: str) -> str:
    return name[len(GROUP_PREFIX) :] if name.startswith(GROUP_PREFIX) else name


class IdentityCache:
    """A short per-process memory of session and token lookups, PostgreSQL only.

    Used only while a :class:`~hatrac.model.directory.accounts.ChangeListener`
    is connected: every logout, revocation, password change, disable and
    membership change NOTIFYs all servers, which clear their caches, so a
    logout is effective at once everywhere. Entries also expire after
    ``session_cache_secs`` as a bound if a notification were ever missed.
    Without a listener (SQLite, where the lookup is a cheap local read, or a
    lost connection) nothing is cached.
    """

    LIMIT = 10000

    def __init__(self, directory: Directory, seconds: int) -> None:
        self.directory = directory
        self.seconds = seconds
        self.enabled = seconds > 0 and directory.dialect == "postgres"
        self._entries: dict[str, tuple[float, Identity]] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self._listener = None
        self._pid = None

    def _listening(self) -> bool:
        import os

        if self._listener is None or self._pid != os.getpid():
            with self._lock:
                if self._listener is None or self._pid != os.getpid():
                    self._pid = os.getpid()
                    self._entries = {}
                    self._listener = sql.ChangeListener(self.directory.database.dsn, self.clear)
        return self._listener.connected

    def lookup(self, key: str, fetch: Callable[[], Optional[Identity]]) -> Optional[Identity]:
        if not self.enabled or not self._listening():
            return fetch()
        self._listener.check()
        now = time.time()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now and (entry[1].expires or now + 1) > now:
            return entry[1]
        generation = self._generation
        identity = fetch()
        if identity is not None:
            with self._lock:
                # a change notified while we asked the database may concern this entry
                if generation == self._generation and self._listener.connected:
                    if len(self._entries) >= self.LIMIT:
                        self._entries = {}
                    self._entries[key] = (now + self.seconds, identity)
        return identity

    def close(self) -> None:
        """Stop listening (the app is being closed)."""
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        self.enabled = False

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries = {}


class PasswordRejected(Exception):
    """A login failed; ``str()`` is the reason for the audit log, never for the client."""

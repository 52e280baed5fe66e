"""SQL of the built-in accounts: users, nested groups, sessions, API tokens, failures.

Every function takes an open :class:`~hatrac.model.directory.sql.Transaction`
(run it with :meth:`Directory.run`) and uses bound parameters only. Secrets
never reach this module: sessions and tokens are stored and looked up by the
SHA-256 of their value, passwords as PBKDF2 hashes made in
:mod:`hatrac.auth.passwords`.

Group membership is the transitive closure of "group contains user" and
"group contains group", computed by a recursive query that ``UNION`` keeps
finite when groups contain each other in a cycle. A session or token lookup
returns the identity and all its groups in one indexed query, so an
authenticated request costs one round trip.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class User:
    """A built-in account."""

    id: int
    name: str
    display_name: Optional[str]
    password_hash: Optional[str]
    disabled: bool
    created: float


@dataclass(frozen=True)
class Identity:
    """Who a session or token belongs to, with the groups of that user (closure)."""

    user_id: int
    name: str
    display_name: Optional[str]
    since: float
    expires: Optional[float]
    groups: tuple


@dataclass(frozen=True)
class Token:
    """An API token's record (never its value)."""

    id: int
    user_name: str
    description: Optional[str]
    created: float
    expires: Optional[float]
    revoked: bool


_USER_COLUMNS = "id, name, display_name, password_hash, disabled, created"


# the groups that contain the user whose id is bound first, directly or through
# other groups; UNION (not UNION ALL) drops repeats, so cycles terminate
def _closure_of(direct: str) -> str:
    """The recursive CTE ``closure(id)``: the groups ``direct`` selects, and every
    group that contains one of them, however deep the nesting."""
    return (
        f"closure(id) AS ({direct}"
        " UNION"
        " SELECT gg.group_id FROM auth_group_groups gg JOIN closure c ON gg.member_id = c.id)"
    )


_CLOSURE = _closure_of(
    "SELECT ug.group_id FROM auth_user_groups ug JOIN who ON ug.user_id = who.user_id"
)


def _user(row) -> User:
    return User(row[0], row[1], row[2], row[3], bool(row[4]), row[5])


def _identity(rows: list) -> Optional[Identity]:
    if not rows:
        return None
    first = rows[0]
    groups = tuple(sorted({row[5] for row in rows if row[5] is not None}))
    return Identity(first[0], first[1], first[2], first[3], first[4], groups)


# -- users ---------------------------------------------------------------------
def get_user(tx: Any, name: str) -> Optional[User]:
    row = tx.one(f"SELECT {_USER_COLUMNS} FROM auth_users WHERE name = %s", (name,))
    return _user(row) if row else None


def list_users(tx: Any) -> list[User]:
    return [_user(row) for row in tx.all(f"SELECT {_USER_COLUMNS} FROM auth_users ORDER BY name")]


def add_user(
    tx: Any, name: str, display_name: Optional[str], password_hash: Optional[str], now: float
) -> Optional[User]:
    """A new user; None when the name is taken."""
    row = tx.one(
        "INSERT INTO auth_users (name, display_name, password_hash, disabled, created) "
        f"VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING RETURNING {_USER_COLUMNS}",
        (name, display_name, password_hash, False, now),
    )
    return _user(row) if row else None


def set_password(tx: Any, name: str, password_hash: str) -> bool:
    """Change a password; the user's sessions end (they were opened with the old one)."""
    user = get_user(tx, name)
    if user is None:
        return False
    tx.execute("UPDATE auth_users SET password_hash = %s WHERE id = %s", (password_hash, user.id))
    tx.execute("DELETE FROM auth_sessions WHERE user_id = %s", (user.id,))
    notify_change(tx)
    return True


def set_display_name(tx: Any, name: str, display_name: Optional[str]) -> bool:
    cursor = tx.execute(
        "UPDATE auth_users SET display_name = %s WHERE name = %s", (display_name, name)
    )
    return cursor.rowcount > 0


def set_disabled(tx: Any, name: str, disabled: bool) -> bool:
    """Disable (ending its sessions) or enable an account."""
    user = get_user(tx, name)
    if user is None:
        return False
    tx.execute("UPDATE auth_users SET disabled = %s WHERE id = %s", (disabled, user.id))
    if disabled:
        tx.execute("DELETE FROM auth_sessions WHERE user_id = %s", (user.id,))
    notify_change(tx)
    return True


def remove_user(tx: Any, name: str) -> bool:
    """Remove a user with its memberships, sessions and tokens."""
    user = get_user(tx, name)
    if user is None:
        return False
    # explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign_keys on
    tx.execute("DELETE FROM auth_sessions WHERE user_id = %s", (user.id,))
    tx.execute("DELETE FROM auth_tokens WHERE user_id = %s", (user.id,))
    tx.execute("DELETE FROM auth_user_groups WHERE user_id = %s", (user.id,))
    tx.execute("DELETE FROM auth_users WHERE id = %s", (user.id,))
    notify_change(tx)
    return True


# -- groups --------------------------------------------------------------------
def group_id(tx: Any, name: str) -> Optional[int]:
    row = tx.one("SELECT id FROM auth_groups WHERE name = %s", (name,))
    return row[0] if row else None


def add_group(tx: Any, name: str, now: float) -> bool:
    """A new group; False when the name is taken."""
    row = tx.one(
        "INSERT INTO auth_groups (name, created) VALUES (%s, %s) "
        "ON CONFLICT (name) DO NOTHING RETURNING id",
        (name, now),
    )
    return row is not None


def remove_group(tx: Any, name: str) -> bool:
    found = group_id(tx, name)
    if found is None:
        return False
    tx.execute("DELETE FROM auth_user_groups WHERE group_id = %s", (found,))
    tx.execute(
        "DELETE FROM auth_group_groups WHERE group_id = %s OR member_id = %s", (found, found)
    )
    tx.execute("DELETE FROM auth_groups WHERE id = %s", (found,))
    notify_change(tx)
    return True


def add_user_to_group(tx: Any, group: int, user: int) -> bool:
    row = tx.one(
        "INSERT INTO auth_user_groups (group_id, user_id) VALUES (%s, %s) "
        "ON CONFLICT DO NOTHING RETURNING group_id",
        (group, user),
    )
    notify_change(tx)
    return row is not None


def add_group_to_group(tx: Any, group: int, member: int) -> bool:
    row = tx.one(
        "INSERT INTO auth_group_groups (group_id, member_id) VALUES (%s, %s) "
        "ON CONFLICT DO NOTHING RETURNING group_id",
        (group, member),
    )
    notify_change(tx)
    return row is not None


def remove_user_from_group(tx: Any, group: int, user: int) -> bool:
    cursor = tx.execute(
        "DELETE FROM auth_user_groups WHERE group_id = %s AND user_id = %s", (group, user)
    )
    changed = cursor.rowcount > 0
    notify_change(tx)
    return changed


def remove_group_from_group(tx: Any, group: int, member: int) -> bool:
    cursor = tx.execute(
        "DELETE FROM auth_group_groups WHERE group_id = %s AND member_id = %s", (group, member)
    )
    changed = cursor.rowcount > 0
    notify_change(tx)
    return changed


def list_groups(tx: Any) -> list[tuple[str, list[str], list[str]]]:
    """Every group with its direct user members and direct group members."""
    groups = {row[0]: ([], []) for row in tx.all("SELECT name FROM auth_groups ORDER BY name")}
    for group, user in tx.all(
        "SELECT g.name, u.name FROM auth_user_groups ug JOIN auth_groups g ON g.id = ug.group_id "
        "JOIN auth_users u ON u.id = ug.user_id ORDER BY u.name"
    ):
        groups[group][0].append(user)
    for group, member in tx.all(
        "SELECT g.name, m.name FROM auth_group_groups gg JOIN auth_groups g ON g.id = gg.group_id "
        "JOIN auth_groups m ON m.id = gg.member_id ORDER BY m.name"
    ):
        groups[group][1].append(member)
    return [(name, users, members) for name, (users, members) in groups.items()]


def groups_of_user(tx: Any, user_id: int) -> list[str]:
    """Names of every group containing the user, directly or through nested groups."""
    rows = tx.all(
        f"WITH RECURSIVE who(user_id) AS (SELECT %s), {_CLOSURE} "
        "SELECT g.name FROM auth_groups g WHERE g.id IN (SELECT id FROM closure) ORDER BY g.name",
        (user_id,),
    )
    return [row[0] for row in rows]


def user_identity(tx: Any, name: str) -> Optional[Identity]:
    """A live (enabled) user and its groups, by name (for Basic and logins)."""
    rows = tx.all(
        "WITH RECURSIVE who AS (SELECT id AS user_id, name, display_name FROM auth_users "
        f"WHERE name = %s AND NOT disabled), {_CLOSURE} "
        "SELECT who.user_id, who.name, who.display_name, 0, NULL, g.name FROM who "
        "LEFT JOIN auth_groups g ON g.id IN (SELECT id FROM closure)",
        (name,),
        prepared=True,
    )
    return _identity(rows)


# -- sessions ------------------------------------------------------------------
_WHO_SESSION = (
    "SELECT u.id AS user_id, u.name, u.display_name, s.since, s.expires "
    "FROM auth_sessions s JOIN auth_users u ON u.id = s.user_id "
    "WHERE s.id_hash = %s AND s.expires > %s AND NOT u.disabled"
)
_WHO_TOKEN = (
    "SELECT u.id AS user_id, u.name, u.display_name, t.created AS since, t.expires "
    "FROM auth_tokens t JOIN auth_users u ON u.id = t.user_id "
    "WHERE t.token_hash = %s AND NOT t.revoked AND (t.expires IS NULL OR t.expires > %s) "
    "AND NOT u.disabled"
)
# the credential's row alone, for with_identity (which reads the user apart); a
# cookie names a session; a bearer value is an API token, else a session id (both
# cannot match: they are distinct random values)
_CREDENTIAL_SESSION = (
    "SELECT s.user_id, s.since, s.expires FROM auth_sessions s "
    "WHERE s.id_hash = %s AND s.expires > %s"
)
_CREDENTIAL_TOKEN = (
    "SELECT t.user_id, t.created AS since, t.expires FROM auth_tokens t "
    "WHERE t.token_hash = %s AND NOT t.revoked AND (t.expires IS NULL OR t.expires > %s)"
)
_CREDENTIAL = {
    "session": _CREDENTIAL_SESSION,
    "bearer": f"{_CREDENTIAL_TOKEN} UNION ALL {_CREDENTIAL_SESSION}",
}
# columns of an identity row: the accounts' generation, and the credential's
# identity (a JSON array of user id, since, expires, name, display name and
# groups; '' when the credential matches nothing live; NULL when skipped)
IDENTITY_WIDTH = 2
GENERATION_COLUMN = 0
# what a caller passes for "no identity known" (no generation is negative)
UNKNOWN = (-1,)


def _lookup(tx: Any, who: str, params: tuple) -> Optional[Identity]:
    rows = tx.all(
        f"WITH RECURSIVE who AS ({who}), {_CLOSURE} "
        "SELECT who.user_id, who.name, who.display_name, who.since, who.expires, g.name "
        "FROM who LEFT JOIN auth_groups g ON g.id IN (SELECT id FROM closure)",
        params,
        prepared=True,
    )
    return _identity(rows)


def session_identity(tx: Any, id_hash: str, now: float) -> Optional[Identity]:
    """The live session with this hash, its enabled user and groups; one query."""
    return _lookup(tx, _WHO_SESSION, (id_hash, now))


def token_identity(tx: Any, token_hash: str, now: float) -> Optional[Identity]:
    """The owner (enabled) and groups of a live, unrevoked token; one query."""
    return _lookup(tx, _WHO_TOKEN, (token_hash, now))


def credential_identity(tx: Any, kind: str, key: str, now: float) -> Optional[Identity]:
    """The identity of a ``session`` cookie or a ``bearer`` value (token, else session)."""
    if kind == "session":
        return session_identity(tx, key, now)
    return token_identity(tx, key, now) or session_identity(tx, key, now)


def with_identity(
    dialect: str, kind: str, key: str, now: float, sql: str, known: tuple = UNKNOWN
) -> tuple[str, tuple]:
    """``sql`` (a SELECT) with the identity of a credential in front of each row, one statement.

    Every row of the result starts with :data:`IDENTITY_WIDTH` identity columns
    (the accounts' generation, then the identity: '' when the credential
    matches nothing live), followed by ``sql``'s columns; when ``sql`` finds no
    row there is still one row, its columns NULL. The parameters returned go
    before ``sql``'s own.

    The accounts' generation is read every time. The credential's row
    (session or token: live, unexpired, unrevoked), its user's row and group
    closure are read only when the generation is not ``known``: the
    ``(generation,)`` at which the caller saw this credential live, given only
    while the expiry it holds is still ahead. Every change that can end a
    credential or change its user (a session deleted or shortened, a token
    revoked or removed, any change to users, groups or memberships) moves the
    generation in its own transaction (triggers, migrations auth-generation-1
    and auth-credentials-1), so while it has not moved, what the caller holds
    is what the rows say. Then the identity column is NULL. :data:`UNKNOWN`
    asks for it.
    """
    if kind == "session":
        params = (key, now)
    else:
        params = (key, now) if dialect == "postgres" else (key, now, key, now)
    return _identity_statement(dialect, kind, sql), (*known, *params)


# the credential's identity (SQLite): a correlated subquery, which SQLite runs
# only when the CASE around it reaches it; the times as 17 digits, which SQLite's
# JSON would round to 15
_IDENTITY_OF_CREDENTIAL = (
    "(SELECT json_array(c.user_id, printf('%!.17g', c.since), "
    "CASE WHEN c.expires IS NULL THEN NULL ELSE printf('%!.17g', c.expires) END, "
    "u.name, u.display_name, (WITH RECURSIVE "
    + _closure_of("SELECT ug.group_id FROM auth_user_groups ug WHERE ug.user_id = u.id")
    + " SELECT group_concat(g.name, char(10)) FROM auth_groups g "
    "WHERE g.id IN (SELECT id FROM closure))) "
    "FROM ({credential}) c JOIN auth_users u ON u.id = c.user_id AND NOT u.disabled LIMIT 1)"
)


@functools.lru_cache(maxsize=256)  # constant texts of ours: a few per kind
def _identity_statement(dialect: str, kind: str, sql: str) -> str:
    # a CASE evaluates its ELSE branch only when taken. On PostgreSQL the
    # credential's row, its user and closure are a function (schema.py,
    # auth-credentials-1): a skipped call costs nothing, where a never-executed
    # subquery, CTE or join still costs the start-up of its part of the plan (and
    # its relations' locks); on SQLite a correlated subquery costs nothing when
    # skipped. A credential dead, or its user disabled or gone, reads as '', so
    # that NULL means "skipped" only
    if dialect == "postgres":
        # kind is one of two constants of ours, not a client's value
        who = f"hatrac_credential_identity('{kind}', %s, %s)"
    else:
        who = _IDENTITY_OF_CREDENTIAL.format(credential=_CREDENTIAL[kind])
    return (
        "SELECT a.generation, "
        f"CASE WHEN a.generation = %s THEN NULL ELSE coalesce({who}, '') END, q.* "
        "FROM (SELECT 1 AS one) one LEFT JOIN auth_generation a ON 1 = 1 "
        f"LEFT JOIN ({sql}) q ON 1 = 1"
    )


def _time(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def identity_of_row(
    row: tuple, held: Optional[tuple] = None, now: Optional[float] = None
) -> Optional[Identity]:
    """The identity at the front of a :func:`with_identity` row, or None.

    ``held``: what the caller knew, ``(generation, identity, ...)``,
    whose generation it gave :func:`with_identity`. When the statement skipped
    the credential for it (same generation), the identity is that one, unless
    its expiry has passed at ``now`` (the caller should not have given it).
    """
    who = row[1]
    if who is None:  # skipped: only ever for the generation held
        if held is None or row[0] != held[0]:
            return None
        identity = held[1]
        if identity.expires is not None and now is not None and now >= identity.expires:
            return None
        return identity
    if not who:  # no live credential, or its user disabled, or gone
        return None
    user_id, since, expires, name, display_name, groups = json.loads(who)
    groups = tuple(sorted(set(groups.split("\n")))) if groups else ()
    return Identity(user_id, name, display_name, _time(since), _time(expires), groups)


def create_session(
    tx: Any, id_hash: str, user_id: int, since: float, expires: float, address: Optional[str]
) -> None:
    tx.execute(
        "INSERT INTO auth_sessions (id_hash, user_id, since, expires, client_address) "
        "VALUES (%s, %s, %s, %s, %s)",
        (id_hash, user_id, since, expires, address),
    )


def extend_session(tx: Any, id_hash: str, expires: float, now: float) -> bool:
    cursor = tx.execute(
        "UPDATE auth_sessions SET expires = %s WHERE id_hash = %s AND expires > %s",
        (expires, id_hash, now),
    )
    return cursor.rowcount > 0


def delete_session(tx: Any, id_hash: str) -> bool:
    cursor = tx.execute("DELETE FROM auth_sessions WHERE id_hash = %s", (id_hash,))
    changed = cursor.rowcount > 0
    notify_change(tx)
    return changed


def delete_expired_sessions(tx: Any, now: float) -> int:
    return tx.execute("DELETE FROM auth_sessions WHERE expires <= %s", (now,)).rowcount


# -- API tokens ----------------------------------------------------------------
def create_token(
    tx: Any,
    token_hash: str,
    user_id: int,
    description: Optional[str],
    now: float,
    expires: Optional[float],
) -> int:
    row = tx.one(
        "INSERT INTO auth_tokens (token_hash, user_id, description, created, expires, revoked) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (token_hash, user_id, description, now, expires, False),
    )
    return row[0]


def revoke_token(tx: Any, token_id: int, user_id: Optional[int] = None) -> bool:
    """Revoke a live token (only one of ``user_id``'s when given)."""
    if user_id is None:
        cursor = tx.execute(
            "UPDATE auth_tokens SET revoked = %s WHERE id = %s AND NOT revoked", (True, token_id)
        )
    else:
        cursor = tx.execute(
            "UPDATE auth_tokens SET revoked = %s WHERE id = %s AND user_id = %s AND NOT revoked",
            (True, token_id, user_id),
        )
    changed = cursor.rowcount > 0
    notify_change(tx)
    return changed


def list_tokens(tx: Any, user_id: Optional[int] = None) -> list[Token]:
    where = "WHERE t.user_id = %s " if user_id is not None else ""
    rows = tx.all(
        "SELECT t.id, u.name, t.description, t.created, t.expires, t.revoked "
        f"FROM auth_tokens t JOIN auth_users u ON u.id = t.user_id {where}ORDER BY t.id",
        (user_id,) if user_id is not None else (),
    )
    return [Token(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]


# -- login failures (rate limiting) --------------------------------------------
def count_failures(tx: Any, keys: list[str], since: float) -> dict[str, int]:
    """How many failures each key had since ``since``."""
    marks = ", ".join(["%s"] * len(keys))
    rows = tx.all(
        f"SELECT failure_key, COUNT(*) FROM auth_failures WHERE failure_key IN ({marks}) "
        "AND at > %s GROUP BY failure_key",
        [*keys, since],
    )
    counts = dict.fromkeys(keys, 0)
    counts.update({row[0]: int(row[1]) for row in rows})
    return counts


def record_failures(tx: Any, keys: list[str], now: float, forget_before: float) -> None:
    """Log a failure under each key, and forget failures older than the window."""
    for key in keys:
        tx.execute("INSERT INTO auth_failures (failure_key, at) VALUES (%s, %s)", (key, now))
    tx.execute("DELETE FROM auth_failures WHERE at < %s", (forget_before,))


def clear_failures(tx: Any, key: str) -> None:
    tx.execute("DELETE FROM auth_failures WHERE failure_key = %s", (key,))


# -- change notifications (PostgreSQL) -----------------------------------------
CHANNEL = "hatrac_auth"


def notify_change(tx: Any) -> None:
    """Tell every server's session cache that sessions, tokens or groups changed.

    PostgreSQL delivers the notification when the transaction commits; SQLite
    has no such thing, and its servers do not cache.
    """
    if tx.dialect == "postgres":
        tx.execute("SELECT pg_notify(%s, '')", (CHANNEL,))


class ChangeListener:
    """A thread holding a PostgreSQL connection that LISTENs for account changes.

    ``on_change()`` is called for each notification and whenever the
    connection is lost or re-established (a lost connection may have missed
    notifications). ``connected`` says whether notifications are flowing now.
    """

    def __init__(self, dsn: str, on_change):
        import threading

        self.dsn = dsn
        self.on_change = on_change
        self.connected = False
        self._conn = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="hatrac-auth-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import select
        import time

        import psycopg2

        while not self._stop:
            conn = None
            try:
                conn = psycopg2.connect(self.dsn, connect_timeout=10)
                conn.autocommit = True
                conn.cursor().execute(f"LISTEN {CHANNEL}")  # a fixed identifier
                self.on_change()
                self._conn = conn
                self.connected = True
                while not self._stop:
                    if select.select([conn], [], [], 5.0)[0]:
                        conn.poll()
                        if conn.notifies:
                            conn.notifies.clear()
                            self.on_change()
                    else:
                        conn.cursor().execute("SELECT 1")  # notice a dead server
            except Exception:  # any failure: stop trusting the cache, retry later
                self.connected = False
                self.on_change()
                time.sleep(1.0)
            finally:
                self.connected = False
                self._conn = None
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass

    def check(self) -> None:
        """Take in notifications already waiting on the socket, without a round trip.

        Called by request threads before they trust the cache, so a logout whose
        notification has reached this process is honoured even if the listener
        thread has not been scheduled yet.
        """
        import select

        conn = self._conn
        if conn is None:
            return
        try:
            if select.select([conn], [], [], 0)[0]:
                conn.poll()
                if conn.notifies:
                    conn.notifies.clear()
                    self.on_change()
        except Exception:  # the listener thread notices and reconnects
            self.on_change()

    def stop(self) -> None:
        self._stop = True
        conn = self._conn
        if conn is not None:
            try:
                conn.close()  # wakes the thread's select
            except Exception:
                pass

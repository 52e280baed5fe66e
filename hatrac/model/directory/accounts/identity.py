"""Who a session, an API token or a login is: the user and all its groups.

A lookup returns the identity and its groups in one indexed query. The one
an authenticated request needs rides in front of the statement that resolves
its name (:func:`with_identity`, read back by :func:`identity_of_row`), so
the request costs no extra round trip.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Optional

from .groups import CLOSURE, closure_of


@dataclass(frozen=True)
class Identity:
    """Who a session or token belongs to, with the groups of that user (closure)."""

    user_id: int
    name: str
    display_name: Optional[str]
    since: float
    expires: Optional[float]
    groups: tuple


def _identity(rows: list) -> Optional[Identity]:
    if not rows:
        return None
    first = rows[0]
    groups = tuple(sorted({row[5] for row in rows if row[5] is not None}))
    return Identity(first[0], first[1], first[2], first[3], first[4], groups)


def user_identity(tx: Any, name: str) -> Optional[Identity]:
    """A live (enabled) user and its groups, by name (for Basic and logins)."""
    rows = tx.all(
        "WITH RECURSIVE who AS (SELECT id AS user_id, name, display_name FROM auth_users "
        f"WHERE name = %s AND NOT disabled), {CLOSURE} "
        "SELECT who.user_id, who.name, who.display_name, 0, NULL, g.name FROM who "
        "LEFT JOIN auth_groups g ON g.id IN (SELECT id FROM closure)",
        (name,),
        prepared=True,
    )
    return _identity(rows)


# a session's or token's user, with the times of the credential
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
# the one identity column in front of a with_identity row: NULL when the
# credential was skipped (the generation is the one held), else the accounts'
# generation, a colon, and the credential's identity: a JSON array of user id,
# since, expires, name, display name and groups, or nothing when the credential
# matches nothing live
IDENTITY_WIDTH = 1
# what a caller passes for "no identity known" (no generation is negative)
UNKNOWN = -1


def _lookup(tx: Any, who: str, params: tuple) -> Optional[Identity]:
    rows = tx.all(
        f"WITH RECURSIVE who AS ({who}), {CLOSURE} "
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
    dialect: str, kind: str, key: str, now: float, sql: str, known: int = UNKNOWN
) -> tuple[str, tuple]:
    """``sql`` (a SELECT) with the identity of a credential in front of each row, one statement.

    Every row of the result starts with :data:`IDENTITY_WIDTH` identity column
    (read by :func:`identity_of_row`), followed by ``sql``'s columns; it is
    computed once for the statement, whatever its number of rows. When
    ``sql`` finds no row, there is no identity either. ``sql`` starts with
    ``SELECT``. The parameters returned go before ``sql``'s own.

    The accounts' generation is read every time. The credential's row
    (session or token: live, unexpired, unrevoked), its user's row and group
    closure are read only when the generation is not ``known``: the
    generation at which the caller saw this credential live, given only
    while the expiry it holds is still ahead. Every change that can end a
    credential or change its user (a session deleted or shortened, a token
    revoked or removed, any change to users, groups or memberships) moves the
    generation in its own transaction (triggers, migrations auth-generation-1
    and auth-credentials-1), so while it has not moved, what the caller holds
    is what the rows say. Then the identity column is NULL. :data:`UNKNOWN`
    asks for the identity.
    """
    # (on PostgreSQL the numbers among them go as text: Database.execute_prepared)
    params = (key, now) if kind == "session" or dialect == "postgres" else (key, now, key, now)
    return _identity_statement(dialect, kind, sql), (known, *params)


# the credential's identity (SQLite): a correlated subquery, which SQLite runs
# only when the CASE around it reaches it; the times as 17 digits, which SQLite's
# JSON would round to 15
_IDENTITY_OF_CREDENTIAL = (
    "(SELECT json_array(c.user_id, printf('%!.17g', c.since), "
    "CASE WHEN c.expires IS NULL THEN NULL ELSE printf('%!.17g', c.expires) END, "
    "u.name, u.display_name, (WITH RECURSIVE "
    + closure_of("SELECT ug.group_id FROM auth_user_groups ug WHERE ug.user_id = u.id")
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
    # skipped. The generation goes in front of the identity, so that NULL means
    # "skipped" only and one read of the generation serves
    if dialect == "postgres":
        # kind is one of two constants of ours, not a client's value
        who = f"hatrac_credential_identity('{kind}', %s, %s)"
    else:
        who = _IDENTITY_OF_CREDENTIAL.format(credential=_CREDENTIAL[kind])
    # the column is an uncorrelated scalar subquery in ``sql``'s own select list,
    # which both databases compute once per statement: cheaper than a join of
    # ``sql`` beside the generation (docs/benchmark.md)
    if not sql.startswith("SELECT "):
        raise ValueError("with_identity needs a plain SELECT")
    return (
        "SELECT (SELECT CASE WHEN a.generation = %s THEN NULL "
        f"ELSE a.generation || ':' || coalesce({who}, '') END "
        f"FROM auth_generation a), {sql[len('SELECT ') :]}"
    )


def _time(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def identity_of_row(
    row: tuple, held: Optional[tuple] = None, now: Optional[float] = None
) -> tuple[Optional[Identity], int]:
    """The identity at the front of a :func:`with_identity` row (or None), and
    the accounts' generation it was read at.

    ``held``: what the caller knew, ``(generation, identity, ...)``,
    whose generation it gave :func:`with_identity`. When the statement skipped
    the credential for it (same generation), the identity is that one, unless
    its expiry has passed at ``now`` (the caller should not have given it).
    """
    column = row[0]
    if column is None:  # skipped: only ever for the generation held
        if held is None:
            return None, -1
        identity = held[1]
        if identity.expires is not None and now is not None and now >= identity.expires:
            return None, held[0]
        return identity, held[0]
    generation, _, who = column.partition(":")
    if not who:  # no live credential, or its user disabled, or gone
        return None, int(generation)
    user_id, since, expires, name, display_name, groups = json.loads(who)
    groups = tuple(sorted(set(groups.split("\n")))) if groups else ()
    identity = Identity(user_id, name, display_name, _time(since), _time(expires), groups)
    return identity, int(generation)

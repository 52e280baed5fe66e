"""SQL of API tokens: made, revoked and listed (by the SHA-256 of the value, never it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from .changes import notify_change


@dataclass(frozen=True)
class Token:
    """An API token's record (never its value)."""

    id: int
    user_name: str
    description: Optional[str]
    created: float
    expires: Optional[float]
    revoked: bool


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

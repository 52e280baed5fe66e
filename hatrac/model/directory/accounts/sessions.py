"""SQL of login sessions: opened, extended, ended, and swept when expired.

A session is stored by the SHA-256 of its id, never the id itself.
"""

from __future__ import annotations

from typing import Any, Optional

from .changes import notify_change


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

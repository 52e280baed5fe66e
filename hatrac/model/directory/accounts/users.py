"""SQL of built-in users: their rows, passwords, display names, disabling, removal.

Passwords arrive here already hashed (:mod:`hatrac.auth.passwords`). A change
that can end a user's sessions ends them in the same transaction and tells
the servers' caches (:func:`.changes.notify_change`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from .changes import notify_change


@dataclass(frozen=True)
class User:
    """A built-in account."""

    id: int
    name: str
    display_name: Optional[str]
    password_hash: Optional[str]
    disabled: bool
    created: float


_USER_COLUMNS = "id, name, display_name, password_hash, disabled, created"


def _user(row: tuple) -> User:
    return User(row[0], row[1], row[2], row[3], bool(row[4]), row[5])


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

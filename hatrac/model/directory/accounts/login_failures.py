"""SQL of failed logins, counted per key to limit the rate of password guesses."""

from __future__ import annotations

from typing import Any


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

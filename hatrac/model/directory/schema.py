"""Versioned schema: named migrations applied once, in order, in one transaction.

Each migration has a unique name and DDL for both dialects. ``migrate`` runs
inside the caller's write transaction (PostgreSQL and SQLite both have
transactional DDL), so an upgrade is applied whole or not at all, and an
advisory lock (PostgreSQL) or the write lock (SQLite) keeps concurrent workers
from racing. Features add their tables by appending to :data:`MIGRATIONS`;
applied migrations are never edited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Migration:
    """One schema step: a unique name and its statements per dialect."""

    name: str
    postgres: tuple[str, ...]
    sqlite: tuple[str, ...]


def _both(*statements: str, serial: str = "BIGSERIAL PRIMARY KEY") -> dict[str, tuple[str, ...]]:
    """The same DDL for both dialects, with the dialects' id and boolean types."""
    postgres = tuple(s.replace("{ID}", serial).replace("{BOOL}", "BOOLEAN") for s in statements)
    sqlite = tuple(
        s.replace("{ID}", "INTEGER PRIMARY KEY AUTOINCREMENT")
        .replace("{BOOL}", "INTEGER")
        .replace("BIGINT", "INTEGER")
        .replace("DOUBLE PRECISION", "REAL")
        for s in statements
    )
    return {"postgres": postgres, "sqlite": sqlite}


def _migration(name: str, *statements: str) -> Migration:
    ddl = _both(*statements)
    return Migration(name, ddl["postgres"], ddl["sqlite"])


MIGRATIONS: list[Migration] = [
    _migration(
        "core-1",
        """CREATE TABLE names (
            id {ID},
            name TEXT NOT NULL UNIQUE,
            parent_id BIGINT REFERENCES names(id),
            kind TEXT NOT NULL CHECK (kind IN ('namespace', 'object')),
            acls TEXT NOT NULL DEFAULT '{}',
            deleted {BOOL} NOT NULL DEFAULT FALSE,
            created DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX names_parent ON names (parent_id)",
        """CREATE TABLE versions (
            id {ID},
            name_id BIGINT NOT NULL REFERENCES names(id),
            version TEXT NOT NULL,
            size BIGINT NOT NULL,
            storage_key TEXT NOT NULL,
            content_type TEXT,
            content_md5 TEXT,
            content_sha256 TEXT,
            content_disposition TEXT,
            acls TEXT NOT NULL DEFAULT '{}',
            created DOUBLE PRECISION NOT NULL,
            deleted {BOOL} NOT NULL DEFAULT FALSE,
            renamed_to_name TEXT,
            renamed_to_version TEXT,
            UNIQUE (name_id, version)
        )""",
        "CREATE INDEX versions_storage_key ON versions (storage_key)",
    ),
]


def _ensure_table(tx: Any) -> None:
    tx.execute(
        "CREATE TABLE IF NOT EXISTS hatrac_schema ("
        "name TEXT PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)"
    )


def applied_migrations(tx: Any) -> list[str]:
    _ensure_table(tx)
    return [row[0] for row in tx.all("SELECT name FROM hatrac_schema ORDER BY applied, name")]


def pending_migrations(tx: Any) -> list[Migration]:
    done = set(applied_migrations(tx))
    return [m for m in MIGRATIONS if m.name not in done]


def migrate(tx: Any) -> list[str]:
    """Apply every pending migration; returns the names applied."""
    import time

    applied = []
    for migration in pending_migrations(tx):
        for statement in getattr(migration, tx.dialect):
            tx.execute(statement)
        tx.execute(
            "INSERT INTO hatrac_schema (name, applied) VALUES (%s, %s)",
            (migration.name, time.time()),
        )
        applied.append(migration.name)
    return applied

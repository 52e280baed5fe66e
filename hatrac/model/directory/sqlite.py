"""SQLite connection layer: the zero-setup embedded default.

One connection per thread (SQLite connections are cheap and must not be
shared between threads), WAL mode so readers never block the writer, full
synchronous commits so an acknowledged version survives a power cut, and
``BEGIN IMMEDIATE`` for write transactions so concurrent writers queue on the
database lock instead of failing on a lock upgrade.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .forks import generation

_PARAM = re.compile(r"%s")


class SQLiteDatabase:
    """Connections to one SQLite file, and the dialect facts the directory needs."""

    dialect = "sqlite"
    writer_locks = False  # BEGIN IMMEDIATE serializes writers; no other locks needed
    group_commit = True  # a process's concurrent writers share a COMMIT (group_commit.py)

    def __init__(self, path: str):
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._generation = generation()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=60000")
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._generation != generation():
            self._generation = generation()
            conn = self._local.conn = self._connect()
        yield conn

    def begin(self, conn: sqlite3.Connection, write: bool, serializable: bool = True) -> None:
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    @staticmethod
    def commit(conn: sqlite3.Connection) -> None:
        conn.commit()

    @staticmethod
    def rollback(conn: sqlite3.Connection) -> None:
        conn.rollback()

    @staticmethod
    @functools.lru_cache(maxsize=1024)  # statements are constant texts of ours
    def translate(sql: str) -> str:
        return _PARAM.sub("?", sql)

    def execute_prepared(self, cursor, sql: str, params: tuple, before=None) -> None:
        """SQLite's own statement cache does what PostgreSQL's PREPARE does."""
        self.execute(cursor, sql, params, before)

    def execute(self, cursor, sql: str, params: tuple, before=None) -> None:
        if before:
            cursor.execute(before)
        cursor.execute(self.translate(sql), params)

    @staticmethod
    def is_retryable(error: BaseException) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)

    @staticmethod
    def is_unique_violation(error: BaseException) -> bool:
        return isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error)

    @staticmethod
    def describe_failure(error: BaseException) -> str:
        return " ".join(str(error).split())[:300]

    @staticmethod
    def is_connection_error(error: BaseException) -> bool:
        return False

    def discard(self, conn: sqlite3.Connection) -> None:
        conn.close()
        self._local.conn = None

    def lock_schema(self, cursor) -> None:
        """Writers are already serialized by BEGIN IMMEDIATE."""

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

"""PostgreSQL connection layer (psycopg2): the production directory.

A per-process thread-safe pool (created lazily, so gunicorn workers forked
after the app was built each get their own). Write transactions run at
SERIALIZABLE, which makes concurrent creation of one name and concurrent
version creation correct; the directory retries them on serialization
failures and deadlocks. A connection broken by a server restart is
discarded and the transaction retried on a fresh one, so the service
recovers by itself.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Iterator

import psycopg2
import psycopg2.errorcodes
import psycopg2.extensions
import psycopg2.pool

_RETRYABLE = {
    psycopg2.errorcodes.SERIALIZATION_FAILURE,
    psycopg2.errorcodes.DEADLOCK_DETECTED,
}

# a fixed key for pg_advisory_xact_lock around schema upgrades ("hatrac" in ASCII)
_SCHEMA_LOCK_KEY = 0x686174726163


class PostgresDatabase:
    """A connection pool for one PostgreSQL DSN, and its dialect facts."""

    dialect = "postgres"

    def __init__(self, dsn: str, pool_size: int = 8):
        self.dsn = dsn
        self.pool_size = pool_size
        self._pool = None
        self._pid = None
        self._lock = threading.Lock()

    def _get_pool(self) -> psycopg2.pool.ThreadedConnectionPool:
        if self._pool is None or self._pid != os.getpid():
            with self._lock:
                if self._pool is None or self._pid != os.getpid():
                    self._pool = psycopg2.pool.ThreadedConnectionPool(
                        0, self.pool_size, self.dsn, connect_timeout=10
                    )
                    self._pid = os.getpid()
        return self._pool

    @contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        pool = self._get_pool()
        conn = pool.getconn()
        try:
            yield conn
        finally:
            if not conn.closed:
                if conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                    conn.rollback()
            pool.putconn(conn, close=bool(conn.closed))

    def begin(self, conn, write: bool, serializable: bool = True) -> None:
        if not write:
            # reads run each statement on its own READ COMMITTED snapshot; autocommit
            # spares the BEGIN and COMMIT round trips on the hot path
            conn.set_session(isolation_level="READ COMMITTED", autocommit=True)
            return
        conn.set_session(
            isolation_level="SERIALIZABLE" if serializable else "READ COMMITTED",
            autocommit=False,
        )

    @staticmethod
    def translate(sql: str) -> str:
        return sql

    @staticmethod
    def is_retryable(error: BaseException) -> bool:
        return getattr(error, "pgcode", None) in _RETRYABLE

    @staticmethod
    def is_unique_violation(error: BaseException) -> bool:
        return getattr(error, "pgcode", None) == psycopg2.errorcodes.UNIQUE_VIOLATION

    @staticmethod
    def is_connection_error(error: BaseException) -> bool:
        return isinstance(error, (psycopg2.OperationalError, psycopg2.InterfaceError)) and (
            getattr(error, "pgcode", None) is None
            or str(getattr(error, "pgcode", "")).startswith("57P")
        )

    def discard(self, conn) -> None:
        try:
            conn.close()
        except psycopg2.Error:
            pass

    def lock_schema(self, cursor) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))

    def close(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            self._pool.closeall()
        self._pool = None

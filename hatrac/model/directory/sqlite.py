"""SQLite connection layer: the zero-setup embedded default.

One connection per thread (SQLite connections are cheap and must not be
shared between threads), WAL mode so readers never block the writer, full
synchronous commits so an acknowledged version survives a power cut, and
``BEGIN IMMEDIATE`` for write transactions so concurrent writers queue on the
database lock instead of failing on a lock upgrade.

Writers of all processes also queue on an ``flock`` of a side file
(``<database>-writer``) before ``BEGIN IMMEDIATE`` (``writer_lock``): SQLite's
own busy handler polls in sleeps of up to 100 ms, so the write lock could
sit free while every waiter slept; the kernel wakes a waiter on ``flock`` at
once. The side lock only orders our writers: SQLite's lock still guards the
database (a writer that does not take it, e.g. the ``sqlite3`` shell, is
waited for by the busy timeout as before).
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import re
import sqlite3
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import ContextManager, Iterator, Optional

from .forks import generation

logger = logging.getLogger(__name__)

_PARAM = re.compile(r"%s")


class SQLiteDatabase:
    """Connections to one SQLite file, and the dialect facts the directory needs."""

    dialect = "sqlite"
    writer_locks = False  # BEGIN IMMEDIATE serializes writers; no other locks needed
    group_commit = True  # a process's concurrent writers share a COMMIT (group_commit.py)

    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._generation = generation()
        self._lock_path = None if path == ":memory:" else path + "-writer"
        self._lock_warned = False

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

    def writer_lock(self) -> ContextManager[None]:
        """Hold the processes' writer queue (an ``flock``) around one write transaction.

        Each thread opens the side file itself: an ``flock`` belongs to the open
        file, so threads (and forked processes) must not share one.
        """
        if self._lock_path is None:
            return nullcontext()
        return self._flock()

    @contextmanager
    def _flock(self) -> Iterator[None]:
        fd = getattr(self._local, "lock_fd", None)
        if fd is None or getattr(self._local, "lock_generation", None) != generation():
            if fd is not None:  # inherited across fork: shares the parent's lock
                os.close(fd)
            fd = self._open_lock()
            self._local.lock_fd, self._local.lock_generation = fd, generation()
        if fd is None:  # no side file: SQLite's busy timeout alone orders the writers
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _open_lock(self) -> Optional[int]:
        # read-only suffices for flock, so a file another user made (an admin
        # command run as root) still serves the service's user
        try:
            return os.open(self._lock_path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            if not self._lock_warned:
                self._lock_warned = True
                logger.warning("no writer queue file %s (%s)", self._lock_path, error.strerror)
            return None

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

    def execute_prepared(
        self, cursor: sqlite3.Cursor, sql: str, params: tuple, before: Optional[str] = None
    ) -> None:
        """SQLite's own statement cache does what PostgreSQL's PREPARE does."""
        self.execute(cursor, sql, params, before)

    def execute(
        self, cursor: sqlite3.Cursor, sql: str, params: tuple, before: Optional[str] = None
    ) -> None:
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

    def lock_schema(self, cursor: sqlite3.Cursor) -> None:
        """Writers are already serialized by BEGIN IMMEDIATE."""

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        fd = getattr(self._local, "lock_fd", None)
        if fd is not None:
            os.close(fd)
        self._local.lock_fd = None

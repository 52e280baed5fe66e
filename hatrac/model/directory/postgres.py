"""PostgreSQL connection layer (psycopg2): the production directory.

A per-process thread-safe pool (created lazily, so gunicorn workers forked
after the app was built each get their own) that keeps its connections open.
Connections stay in autocommit mode: reads need no BEGIN/COMMIT, and write
transactions send one ``BEGIN ISOLATION LEVEL ...`` (SERIALIZABLE, or READ
COMMITTED ordered by a names-table lock for the hot writers; see
docs/architecture.md).
The directory retries them on serialization failures and deadlocks. A
connection broken by a server restart is discarded and the transaction
retried on a fresh one, so the service recovers by itself.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from contextlib import contextmanager
from typing import Hashable, Iterator, Optional

import psycopg2
import psycopg2.errorcodes
import psycopg2.extensions
import psycopg2.pool
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from ...errors import DatabaseUnusable, ServiceUnavailable
from .forks import generation

_RETRYABLE = {
    psycopg2.errorcodes.SERIALIZATION_FAILURE,
    psycopg2.errorcodes.DEADLOCK_DETECTED,
}

# SQLSTATE classes of a connection the server broke (08: connection exception,
# 57P: operator intervention, e.g. an immediate shutdown)
_CONNECTION_CODES = ("08", "57P")

# how long a request waits for a free pooled connection before answering 503
POOL_WAIT_SECS = 30.0

# a fixed key for pg_advisory_xact_lock around schema upgrades ("hatrac" in ASCII)
_SCHEMA_LOCK_KEY = 0x686174726163

# Planner costs of the service's own sessions: the directory's tables and
# indexes are small and hot (cached), so an index probe costs about what a
# sequential page read does. With the default (4.0) the plan a connection
# caches for a hot statement while a table is still small (a new database
# before autovacuum's first ANALYZE) is a sequential scan, and stays one as
# the table grows; each GET then scanned every name and hashed every version.
# An ``options`` setting in database_dsn comes after this one, so it wins.
PLANNER_OPTIONS = "-c random_page_cost=1.1"


def session_options(dsn: str) -> Optional[str]:
    """The ``options`` our connections are opened with: PLANNER_OPTIONS, then the
    DSN's own (None for a DSN libpq cannot parse: connecting reports it)."""
    try:
        given = psycopg2.extensions.parse_dsn(dsn).get("options")
    except psycopg2.ProgrammingError:
        return None
    return f"{PLANNER_OPTIONS} {given}" if given else PLANNER_OPTIONS


# libpq messages of failures that retrying cannot cure, and what to check
_PERMANENT = [
    (
        re.compile(r"authentication failed|no pg_hba\.conf entry|role .* does not exist"),
        "the user and password of database_dsn, and pg_hba.conf of the server",
    ),
    (
        re.compile(r"database .* does not exist"),
        "the database name of database_dsn "
        "(create it, or run 'hatrac init-db' against an existing one)",
    ),
    (
        re.compile(
            r"could not translate host name|Name or service not known|nodename nor "
            r"servname"
        ),
        "the host of database_dsn",
    ),
    (
        re.compile(r"invalid dsn|missing \"=\"|invalid connection option|invalid URI"),
        "the syntax of database_dsn",
    ),
]


def permanent_failure(dsn: str, error: BaseException) -> Optional[str]:
    """One line saying why connecting failed for good, or None if a retry may help."""
    text = " ".join(str(error).split())
    for pattern, check in _PERMANENT:
        if pattern.search(text):
            reason = text.split("FATAL:", 1)[-1].strip()
            return f"PostgreSQL refuses the connection: {reason}; check {check}"
    return None


def connect_failure(error: BaseException) -> str:
    """One line for a connection failure a retry may cure (no server there yet)."""
    text = " ".join(str(error).split())
    where = re.search(r'server at "([^"]+)"(?: \([^)]*\))?, port (\d+)', text)
    if where and "refused" in text.lower():
        return f"no server at {where.group(1)}:{where.group(2)} (connection refused)"
    if "timeout expired" in text:
        return "no answer from the database server (connection timeout)"
    return text[:300]


class _Connection(psycopg2.extensions.connection):
    """A connection that remembers which statements it has prepared."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prepared: set[str] = set()
        # the BEGIN of a write transaction, sent with its first statement
        self.pending_begin: Optional[str] = None


_PLACEHOLDER = re.compile(r"%s|%%")


# the types of the parameters sent to EXECUTE as text (not bool, which psycopg2
# sends as true/false)
_NUMBERS = (int, float)


def _numbered(sql: str) -> str:
    """psycopg2's ``%s`` placeholders as PREPARE's ``$1, $2, ...``."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda m: "%" if m.group() == "%%" else f"${next(counter)}", sql)


class _LazyThreadedPool(psycopg2.pool.ThreadedConnectionPool):
    """A thread-safe pool that opens connections on demand, then keeps them.

    psycopg2 opens ``minconn`` connections up front; we want none until a
    request needs one (the database may still be starting), yet all of them kept
    once opened.
    """

    def __init__(self, minconn: int, maxconn: int, *args, **kwargs) -> None:
        self._opening = True
        super().__init__(minconn, maxconn, *args, **kwargs)
        self._opening = False

    def _connect(self, key: Optional[Hashable] = None) -> Optional[_Connection]:
        if self._opening:
            return None
        conn = super()._connect(key)
        conn.autocommit = True  # transactions are begun explicitly (PostgresDatabase.begin)
        return conn


class PostgresDatabase:
    """A connection pool for one PostgreSQL DSN, and its dialect facts."""

    dialect = "postgres"
    writer_locks = True  # LOCK TABLE and SELECT ... FOR UPDATE (see Transaction.resolve)
    # a transaction's last statement may carry its COMMIT (Transaction.finish)
    commit_in_statement = True

    def __init__(self, dsn: str, pool_size: int = 8, prepared_statements: bool = True) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        # off behind a transaction-pooling proxy (PgBouncer), which cannot keep
        # SQL-level prepared statements of one client connection
        self.prepared_statements = prepared_statements
        self._pool = None
        self._pid = None
        self._generation = -1
        self._lock = threading.Lock()
        self._statement_names: dict[str, str] = {}
        self._free: Optional[threading.BoundedSemaphore] = None  # made with the pool

    def _get_pool(self) -> psycopg2.pool.ThreadedConnectionPool:
        if self._pool is None or self._generation != generation():
            with self._lock:
                if self._pool is None or self._generation != generation():
                    # psycopg2's pool keeps at most minconn idle connections and
                    # closes the rest in putconn, so minconn must be the pool size
                    # or every transaction would connect anew; the semaphore
                    # makes a request wait for a free one instead of failing
                    self._free = threading.BoundedSemaphore(self.pool_size)
                    options = session_options(self.dsn)
                    self._pool = _LazyThreadedPool(
                        self.pool_size,
                        self.pool_size,
                        self.dsn,
                        connect_timeout=10,
                        connection_factory=_Connection,
                        **({"options": options} if options else {}),
                    )
                    self._pid = os.getpid()
                    self._generation = generation()
        return self._pool

    @contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        """A pooled connection; when all are in use, wait for one (psycopg2's pool
        would raise instead), and answer 503 if none frees up in time."""
        pool = self._get_pool()
        free = self._free
        if not free.acquire(timeout=POOL_WAIT_SECS):
            raise ServiceUnavailable(
                "Every database connection of this server process is busy; please retry."
            )
        try:
            try:
                conn = pool.getconn()
            except psycopg2.OperationalError as error:
                permanent = permanent_failure(self.dsn, error)
                if permanent is not None:
                    raise DatabaseUnusable(permanent) from None
                raise
            try:
                yield conn
            finally:
                try:
                    self.rollback(conn)
                except psycopg2.Error:
                    conn.close()
                pool.putconn(conn, close=bool(conn.closed))
        finally:
            free.release()

    def begin(self, conn: Connection, write: bool, serializable: bool = True) -> None:
        """Start a transaction: reads run in autocommit (each statement on its own
        READ COMMITTED snapshot, no BEGIN/COMMIT round trips on the hot path);
        writes send one BEGIN that carries the isolation level.

        The connection stays in autocommit mode for good, so psycopg2 never sends
        the ``SET default_transaction_isolation`` that switching modes costs.
        """
        if write:
            level = "SERIALIZABLE" if serializable else "READ COMMITTED"
            # sent in the same round trip as the transaction's first statement
            conn.pending_begin = f"BEGIN ISOLATION LEVEL {level}"  # one of two constants
        else:
            conn.pending_begin = None

    @staticmethod
    def commit(conn: Connection) -> None:
        if conn.pending_begin is not None:
            conn.pending_begin = None  # nothing was sent: nothing to commit
            return
        if conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            conn.cursor().execute("COMMIT")

    @staticmethod
    def rollback(conn: Connection) -> None:
        conn.pending_begin = None
        if conn.closed:
            return
        status = conn.info.transaction_status
        if status in (
            psycopg2.extensions.TRANSACTION_STATUS_INTRANS,
            psycopg2.extensions.TRANSACTION_STATUS_INERROR,
        ):
            conn.cursor().execute("ROLLBACK")

    @staticmethod
    def translate(sql: str) -> str:
        return sql

    def execute_prepared(
        self,
        cursor: Cursor,
        sql: str,
        params: tuple,
        before: Optional[str] = None,
        after: Optional[str] = None,
    ) -> None:
        """Run a hot statement as a server-side prepared statement.

        It is parsed and planned once per connection (planning a join costs more
        than running it); prepared statements outlive rollbacks, and a new
        connection prepares afresh. ``sql`` and ``before`` (a statement sent in
        the same round trip, e.g. a LOCK) are always constant text of ours, as
        is ``after`` (``COMMIT``, sent in the same round trip after it: then the
        statement's own rows are not returned, only the last statement's).
        """
        if not self.prepared_statements:
            self.execute(cursor, sql, params, before, after)
            return
        name = self._statement_names.get(sql)
        if name is None:
            name = "hatrac_" + hashlib.sha1(sql.encode()).hexdigest()[:20]
            self._statement_names[sql] = name
        conn = cursor.connection
        first = self._first_statements(conn, before)
        if name not in conn.prepared:
            if first:
                # BEGIN and a LOCK must precede PREPARE, which takes a SERIALIZABLE snapshot
                cursor.execute("; ".join(first))
                first = []
            cursor.execute(f"PREPARE {name} AS {_numbered(sql)}")
            conn.prepared.add(name)
        call = f"EXECUTE {name}"
        if params:
            call += f" ({', '.join(['%s'] * len(params))})"
            # numbers sent as quoted text: EXECUTE reads a quoted literal with the
            # parameter's own type's input function, where a number's literal is typed
            # on its own and then converted, and psycopg2 adapts a number in more steps
            # than a string (a few us each side per parameter, docs/benchmark.md); the
            # parameters' types are PREPARE's, so the values read are the same (str of
            # a float is its exact repr)
            params = tuple([str(p) if type(p) in _NUMBERS else p for p in params])
        cursor.execute("; ".join([*first, call, *([after] if after else [])]), params or None)

    def execute(
        self,
        cursor: Cursor,
        sql: str,
        params: tuple,
        before: Optional[str] = None,
        after: Optional[str] = None,
    ) -> None:
        """Run a statement, preceded in the same round trip by a pending BEGIN and
        by ``before``, and followed by ``after``."""
        first = self._first_statements(cursor.connection, before)
        cursor.execute("; ".join([*first, sql, *([after] if after else [])]), params)

    @staticmethod
    def _first_statements(conn: _Connection, before: Optional[str]) -> list[str]:
        first = [text for text in (conn.pending_begin, before) if text]
        conn.pending_begin = None
        return first

    @staticmethod
    def is_retryable(error: BaseException) -> bool:
        return getattr(error, "pgcode", None) in _RETRYABLE

    @staticmethod
    def is_unique_violation(error: BaseException) -> bool:
        return getattr(error, "pgcode", None) == psycopg2.errorcodes.UNIQUE_VIOLATION

    @staticmethod
    def is_connection_error(error: BaseException) -> bool:
        """A lost or refused connection, wherever it surfaced (checkout, statement,
        COMMIT): libpq reports these without an SQLSTATE, as OperationalError,
        InterfaceError or a bare DatabaseError ("server closed the connection
        unexpectedly"); the server itself as class 08 or 57P (shutdown)."""
        if not isinstance(error, psycopg2.Error):
            return False
        code = getattr(error, "pgcode", None)
        if code is None:
            return (
                isinstance(error, (psycopg2.OperationalError, psycopg2.InterfaceError))
                or type(error) is psycopg2.DatabaseError
            )
        return str(code).startswith(_CONNECTION_CODES)

    @staticmethod
    def describe_failure(error: BaseException) -> str:
        """One line about a transient failure, for logs and the 503's reason."""
        if isinstance(error, psycopg2.OperationalError) and "connection" in str(error):
            return connect_failure(error)
        return " ".join(str(error).split())[:300]

    def discard(self, conn: Connection) -> None:
        try:
            conn.close()
        except psycopg2.Error:
            pass

    def lock_schema(self, cursor: Cursor) -> None:
        self.execute(cursor, "SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))

    def close(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            self._pool.closeall()
        self._pool = None

"""The transaction runner, and the transaction its functions are given.

Statements are written once with ``%s`` placeholders and bound parameters;
the connection layer translates placeholders for its driver. Nothing in the
directory splices a value into SQL text. (``IN`` lists get one placeholder
per value.) A :class:`Transaction` runs them: its own methods send a
statement (with the request's pending credential lookup when it resolves a
name); those about names are in :mod:`.names`, about versions in
:mod:`.versions`, mixed in here.

:meth:`Directory.run` executes a function inside a transaction and retries it
when the database reports a serialization failure, a deadlock or a dropped
connection. Functions passed to it must therefore only touch the database:
bytes are written to storage before, and reclaimed after, the transaction.
"""

from __future__ import annotations

import logging
import random
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, TypeVar, Union

from ...errors import ServiceUnavailable
from ...urls import ROOT
from ..credentials import pending
from ..resources import NAMESPACE
from . import accounts
from .group_commit import GroupCommit
from .names import NameQueries
from .schema import migrate
from .versions import VersionQueries

if TYPE_CHECKING:
    import sqlite3

    import psycopg2.extensions

    from .postgres import PostgresDatabase
    from .sqlite import SQLiteDatabase

    # the two connection layers, and the cursors they give
    Database = Union[PostgresDatabase, SQLiteDatabase]
    Cursor = Union[psycopg2.extensions.cursor, sqlite3.Cursor]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_COMMIT_UNKNOWN = (
    "The database connection broke while committing; the change may or may not have been "
    "made. Please check, then retry."
)


class CommitOutcomeUnknown(ServiceUnavailable):
    """The connection broke during COMMIT: the transaction may or may not have
    committed. Never retried (that could do the work twice); the caller finds
    out which (e.g. :meth:`Hatrac.bind_version` looks for its version)."""


class RetryTransaction(Exception):
    """Raised inside a transaction function to ask for a fresh attempt."""


class Transaction(NameQueries, VersionQueries):
    """A cursor inside one transaction, with the directory's queries as methods."""

    def __init__(self, database: Database, cursor: Cursor) -> None:
        self._database = database
        self._cursor = cursor
        self.dialect = database.dialect

    # -- plumbing -----------------------------------------------------------
    def execute(
        self,
        sql: str,
        params: Iterable[Any] = (),
        prepared: bool = False,
        before: Optional[str] = None,
    ) -> Any:
        """Run one statement; ``prepared`` for the hot ones (planned once per
        connection); ``before``, a constant statement sent in the same round trip."""
        if prepared:
            self._database.execute_prepared(self._cursor, sql, tuple(params), before)
        else:
            self._database.execute(self._cursor, sql, tuple(params), before)
        return self._cursor

    def finish(self, sql: str, params: Iterable[Any] = ()) -> Optional[tuple]:
        """Run the transaction's last statement (prepared) and commit.

        Where the database allows it (PostgreSQL), the COMMIT travels in the
        same round trip, and the statement's rows are not returned (None); else
        the first row is, and the transaction commits as usual. A connection
        that breaks during that round trip leaves the outcome unknown, as a
        broken COMMIT does: :class:`CommitOutcomeUnknown`, never retried.
        """
        database = self._database
        if not getattr(database, "commit_in_statement", False):
            return self.one(sql, params, prepared=True)
        try:
            database.execute_prepared(self._cursor, sql, tuple(params), after="COMMIT")
        except Exception as error:
            if not database.is_connection_error(error):
                raise  # refused before the COMMIT ran: the transaction is aborted
            database.discard(self._cursor.connection)
            raise CommitOutcomeUnknown(_COMMIT_UNKNOWN) from error
        return None

    def one(self, sql: str, params: Iterable[Any] = (), prepared: bool = False) -> Optional[tuple]:
        return self.execute(sql, params, prepared).fetchone()

    def all(
        self,
        sql: str,
        params: Iterable[Any] = (),
        prepared: bool = False,
        before: Optional[str] = None,
    ) -> list[tuple]:
        return self.execute(sql, params, prepared, before).fetchall()

    def _rows_with_credential(
        self, sql: str, params: list, before: Optional[str] = None
    ) -> list[tuple]:
        """A name-resolving SELECT, carrying the request's pending credential lookup.

        When the request has a session or token whose identity is not known yet
        (:mod:`hatrac.model.credentials`), it is fetched by the same statement:
        a dead credential raises its 401 here, before any row is used.
        """
        lookup = pending()
        if lookup is None:
            return self.all(sql, params, prepared=True, before=before)
        statement, front = accounts.with_identity(
            self.dialect, lookup.kind, lookup.key, lookup.now, sql, lookup.known
        )
        rows = self.all(statement, [*front, *params], prepared=True, before=before)
        if not rows:  # the chain always holds the root, so not in practice
            lookup.fetch()
            return rows
        lookup.settle(*accounts.identity_of_row(rows[0], lookup.held, lookup.now))
        width = accounts.IDENTITY_WIDTH
        return [row[width:] for row in rows]


class Directory:
    """The SQL directory over one connection layer (PostgreSQL or SQLite)."""

    def __init__(self, database: Database, max_retries: int = 8) -> None:
        self.database = database
        self.max_retries = max_retries
        # SQLite: concurrent write transactions of this process share one COMMIT
        self._group = (
            GroupCommit(
                lambda: self._transaction(True, False), getattr(database, "writer_lock", None)
            )
            if getattr(database, "group_commit", False)
            else None
        )

    @property
    def dialect(self) -> str:
        return self.database.dialect

    def initialize(self, root_acls: dict, now: Optional[float] = None) -> None:
        """Create or upgrade the schema (idempotent) and make sure the root exists."""

        def setup(tx: Transaction) -> None:
            self.database.lock_schema(tx._cursor)
            migrate(tx)
            if tx.get_name(ROOT) is None:
                tx.create_name(ROOT, None, NAMESPACE, root_acls, now or time.time())

        # not serializable: the snapshot must be taken after the schema lock is
        # held, so that a worker that waited sees what the first one committed
        self.run(setup, write=True, serializable=False)

    @contextmanager
    def _transaction(self, write: bool, serializable: bool = True) -> Iterator[Transaction]:
        with self.database.connection() as conn:
            lookup = pending()
            try:
                self.database.begin(conn, write, serializable)
                cursor = conn.cursor()
                tx = Transaction(self.database, cursor)
                if lookup is not None:
                    lookup.open_transaction = tx  # a lookup made meanwhile runs in it
                yield tx
                try:
                    self.database.commit(conn)
                except Exception as error:
                    if not self.database.is_connection_error(error):
                        raise
                    self.database.discard(conn)
                    raise CommitOutcomeUnknown(_COMMIT_UNKNOWN) from error
            except BaseException as error:
                try:
                    self.database.rollback(conn)
                except Exception:  # the connection itself may be gone
                    pass
                if self.database.is_connection_error(error):
                    self.database.discard(conn)
                raise
            finally:
                if lookup is not None:
                    lookup.open_transaction = None

    def run(
        self, work: Callable[[Transaction], T], write: bool = False, serializable: bool = True
    ) -> T:
        """Run ``work(tx)`` in a transaction, retrying transient database failures.

        Write transactions are serializable unless ``serializable`` is False.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                if write and self._group is not None:
                    return self._group.run(work)
                with self._transaction(write, serializable) as tx:
                    return work(tx)
            except RetryTransaction:
                pass
            except Exception as error:
                transient = self.database.is_retryable(error) or self.database.is_connection_error(
                    error
                )
                if not transient:
                    raise
                if attempt > self.max_retries:
                    reason = self.database.describe_failure(error)
                    logger.warning("database still failing after %d attempts: %s", attempt, reason)
                    raise ServiceUnavailable(
                        f"The database is busy or unavailable ({reason}); please retry."
                    ) from error
            if attempt > self.max_retries:
                raise ServiceUnavailable("The database is busy; please retry.")
            # jittered exponential backoff, capped well below client timeouts
            time.sleep(min(0.5, 0.005 * (2**attempt)) * random.random())

    def ping(self) -> None:
        """One cheap round trip without retries (readiness); raises when unreachable."""
        with self._transaction(write=False) as tx:
            tx.one("SELECT 1")

    def close(self) -> None:
        self.database.close()

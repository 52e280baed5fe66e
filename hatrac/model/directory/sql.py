"""Every SQL statement of the directory, and the transaction runner.

Statements are written once with ``%s`` placeholders and bound parameters;
the connection layer translates placeholders for its driver. Nothing here
splices a value into SQL text. (``IN`` lists get one placeholder per value.)

:meth:`Directory.run` executes a function inside a transaction and retries it
when the database reports a serialization failure, a deadlock or a dropped
connection. Functions passed to it must therefore only touch the database:
bytes are written to storage before, and reclaimed after, the transaction.
"""

from __future__ import annotations

import json
import logging
import random
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar

from ...errors import ServiceUnavailable
from ...urls import ROOT
from ..credentials import pending
from ..resources import NAMESPACE, OBJECT, Name, ObjectVersion, Resolved
from . import accounts
from . import inline as inline_sql
from .group_commit import GroupCommit
from .rows import name_of_row, new_version, resolved_chain, version_of_row
from .schema import migrate

logger = logging.getLogger(__name__)

T = TypeVar("T")

_NAME_COLUMNS = "id, name, kind, acls, deleted, created"
_NAME_COLUMNS_OF_N = ", ".join("n." + column for column in _NAME_COLUMNS.split(", "))
_NAME_WIDTH = len(_NAME_COLUMNS.split(", "))
_VERSION_COLUMNS = (
    "v.id, v.name_id, n.name, v.version, v.size, v.storage_key, v.content_type, "
    "v.content_md5, v.content_sha256, v.content_disposition, v.acls, v.created, v.deleted, "
    "v.renamed_to_name, v.renamed_to_version"
)
# a version read that also fetches the bytes of an inline version (one row)
_VERSION_COLUMNS_WITH_DATA = f"{_VERSION_COLUMNS}, {inline_sql.DATA_COLUMN}"


# a namespace's live children joined by newlines (Transaction.children), in no
# particular order: the caller sorts them
CHILDREN = {
    "sqlite": "SELECT group_concat(name, char(10)) FROM names WHERE parent_id = %s AND NOT deleted",
    "postgres": "SELECT string_agg(name, E'\\n') FROM names WHERE parent_id = %s AND NOT deleted",
}


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


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


class Transaction:
    """A cursor inside one transaction, with the directory's queries as methods."""

    def __init__(self, database, cursor):
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
        first = rows[0]
        lookup.settle(
            accounts.identity_of_row(first, lookup.held, lookup.now),
            first[accounts.GENERATION_COLUMN],
        )
        width = accounts.IDENTITY_WIDTH
        return [row[width:] for row in rows if row[width] is not None]

    # -- names --------------------------------------------------------------
    def resolve(self, name: str, chain: list[str], lock: Optional[str] = None) -> Resolved:
        """Look up a name and all its ancestors (with their ACLs) in one query.

        ``lock`` is for write transactions on PostgreSQL, which order writers by
        locks on the names table taken before anything is read:

        * ``"share"``: a writer that creates beneath the chain (a name, a version,
          a job) or changes a version takes ROW EXCLUSIVE, which writers share;
        * ``"update"``: the same, plus the name's own row FOR UPDATE (a writer
          that changes the name, or a conditional PUT: one at a time per name);
        * ``"delete"``: SHARE ROW EXCLUSIVE, which waits for every writer above
          to commit and holds new ones back until the delete commits, so the
          delete sees all they made and they then see its tombstone.

        No row of an ancestor is locked: a row share-locked by many writers at
        once would be rewritten (MultiXact) on every PUT into a busy namespace.
        SQLite serializes writers already.
        """
        select = f"SELECT {_NAME_COLUMNS} FROM names WHERE name "
        if lock is None or not self._database.writer_locks:
            rows = self._rows_with_credential(select + f"IN ({_placeholders(len(chain))})", chain)
        elif lock in ("share", "delete"):
            table_lock = "SHARE ROW EXCLUSIVE" if lock == "delete" else "ROW EXCLUSIVE"
            rows = self._rows_with_credential(
                select + f"IN ({_placeholders(len(chain))})",
                chain,
                before=f"LOCK TABLE names IN {table_lock} MODE",
            )
        elif lock == "update":
            above = chain[:-1]
            rows = self._rows_with_credential(
                select + f"IN ({_placeholders(len(above))})",
                above,
                before="LOCK TABLE names IN ROW EXCLUSIVE MODE",
            )
            rows += self.all(select + "= %s FOR UPDATE", (name,), prepared=True)
        else:
            raise ValueError(f"unknown lock mode {lock!r}")
        return resolved_chain(name, chain, [name_of_row(row) for row in rows])

    def resolve_current(
        self, name: str, chain: list[str]
    ) -> tuple[Resolved, Optional[ObjectVersion]]:
        """:meth:`resolve`, plus the current version when the name is an object, in
        one round trip (the hot path of a GET)."""
        rows = self._rows_with_credential(
            f"SELECT {_NAME_COLUMNS_OF_N}, {_VERSION_COLUMNS_WITH_DATA} FROM names n "
            "LEFT JOIN versions v ON n.name = %s AND v.id = ("
            "SELECT max(c.id) FROM versions c WHERE c.name_id = n.id AND NOT c.deleted) "
            f"{inline_sql.DATA_JOIN} WHERE n.name IN ({_placeholders(len(chain))})",
            [name, *chain],
        )
        current = None
        for row in rows:
            if row[_NAME_WIDTH] is not None:
                current = version_of_row(row[_NAME_WIDTH:])
        return resolved_chain(name, chain, [name_of_row(row) for row in rows]), current

    def create_name(
        self, name: str, parent_id: Optional[int], kind: str, acls: dict, now: float
    ) -> Optional[Name]:
        """Bind a new name; None when the name is already bound (or a tombstone)."""
        row = self.one(
            f"INSERT INTO names (name, parent_id, kind, acls, deleted, created) "
            f"VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING "
            f"RETURNING {_NAME_COLUMNS}",
            (name, parent_id, kind, json.dumps(acls), False, now),
            prepared=True,
        )
        return name_of_row(row) if row else None

    def get_name(self, name: str) -> Optional[Name]:
        row = self.one(f"SELECT {_NAME_COLUMNS} FROM names WHERE name = %s", (name,))
        return name_of_row(row) if row else None

    def children(self, namespace_id: int) -> list[str]:
        """Names of the live children, in byte order.

        The database joins them into one string (canonical names never contain
        a newline): one value to fetch instead of a row per child, which is
        what makes a listing of 10,000 children cheap. The rows come from the
        ``names_parent_live`` index alone (a covering index). The database does
        not order them: Python sorts the list (a few tens of microseconds when,
        as from that index, it is already in order), so a plan made without
        statistics (a sort of its own, costing milliseconds) never adds to a
        listing. Python's order of strings (by code point) is the byte order of
        their UTF-8, which is the names' order on both databases.
        """
        joined = self.one(CHILDREN[self.dialect], (namespace_id,), prepared=True)[0]
        if not joined:
            return []
        names = joined.split("\n")
        names.sort()
        return names

    def descendants(self, name: str) -> list[Name]:
        """Every live name strictly beneath ``name`` (a range scan on the name index)."""
        low = "/" if name == ROOT else name + "/"
        high = "0" if name == ROOT else name + "0"  # '0' sorts right after '/'
        rows = self.all(
            f"SELECT {_NAME_COLUMNS} FROM names WHERE name >= %s AND name < %s "
            "AND NOT deleted ORDER BY name",
            (low, high),
        )
        return [name_of_row(row) for row in rows]

    def delete_names(self, ids: list[int]) -> None:
        """Turn names into tombstones, and delete all their versions."""
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = _placeholders(len(batch))
            self.execute(f"UPDATE names SET deleted = %s WHERE id IN ({marks})", [True, *batch])
            self.execute(
                f"UPDATE versions SET deleted = %s WHERE name_id IN ({marks}) AND NOT deleted",
                [True, *batch],
            )

    def set_name_acls(self, name_id: int, acls: dict) -> None:
        self.execute("UPDATE names SET acls = %s WHERE id = %s", (json.dumps(acls), name_id))

    # -- versions -----------------------------------------------------------
    _INSERT_VERSION = (
        "INSERT INTO versions (name_id, version, size, storage_key, content_type, "
        "content_md5, content_sha256, content_disposition, acls, created, deleted) "
    )

    def create_version(
        self,
        name_id: int,
        version: str,
        size: int,
        storage_key: str,
        metadata: dict,
        acls: dict,
        now: float,
        inline: Optional[bytes] = None,
        last: bool = False,
        name: Optional[str] = None,
    ) -> ObjectVersion:
        """Bind a version; ``inline``: its bytes, stored in this transaction too.

        ``last``: the transaction's last statement, which commits it (see
        :meth:`finish`; the version's row id is then not known: None). ``name``
        is the object's, when the caller knows it (else it is read back)."""
        statement = (
            f"{self._INSERT_VERSION} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING id, (SELECT name FROM names WHERE id = versions.name_id)"
        )
        front: tuple = ()
        if inline is not None:
            statement, front = inline_sql.insert_with(self, statement, storage_key, inline, now)
        params = (*front, name_id, *self._version_values(version, size, storage_key, metadata))
        params += (json.dumps(acls), now, False)
        if last:
            row = self.finish(statement, params) or (None, name)
        else:
            row = self.one(statement, params, prepared=True)
        return new_version(
            row[0], name_id, row[1] or name, version, size, storage_key, metadata, acls, now
        )

    def create_object_version(
        self,
        name: str,
        parent_id: int,
        name_acls: dict,
        version: str,
        size: int,
        storage_key: str,
        metadata: dict,
        acls: dict,
        now: float,
        inline: Optional[bytes] = None,
        last: bool = False,
    ) -> Optional[ObjectVersion]:
        """Bind a new object name and its first version; None when the name is
        already bound (or a tombstone): the caller starts over.

        On PostgreSQL one statement (the name's INSERT feeds the version's, with
        the inline bytes beside them), so a new small object costs one round trip
        after the lookup, COMMIT included when ``last`` (see :meth:`finish`)."""
        if self.dialect != "postgres":
            made = self.create_name(name, parent_id, OBJECT, name_acls, now)
            if made is None:
                return None
            return self.create_version(
                made.id, version, size, storage_key, metadata, acls, now, inline, last, name
            )
        parts = [
            "made AS (INSERT INTO names (name, parent_id, kind, acls, deleted, created) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id)"
        ]
        params: list = [name, parent_id, OBJECT, json.dumps(name_acls), False, now]
        if inline is not None:
            parts.append(f"stored AS ({inline_sql.INSERT})")
            params += [storage_key, inline, now]
        statement = (
            f"WITH {', '.join(parts)} {self._INSERT_VERSION} "
            "SELECT made.id, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM made "
            "RETURNING id, name_id"
        )
        params += [*self._version_values(version, size, storage_key, metadata)]
        params += [json.dumps(acls), now, False]
        try:
            # no ON CONFLICT: a name bound meanwhile must stop the version's INSERT
            # (and a COMMIT sent with it) with an error, not insert nothing
            row = self.finish(statement, params) if last else self.one(statement, params, True)
        except Exception as error:
            if not self._database.is_unique_violation(error):
                raise
            return None
        if row is None:
            row = (None, None)
        return new_version(row[0], row[1], name, version, size, storage_key, metadata, acls, now)

    @staticmethod
    def _version_values(version: str, size: int, storage_key: str, metadata: dict) -> tuple:
        return (
            version,
            size,
            storage_key,
            metadata.get("content-type"),
            metadata.get("content-md5"),
            metadata.get("content-sha256"),
            metadata.get("content-disposition"),
        )

    def version_by_id(self, version_id: int) -> Optional[ObjectVersion]:
        row = self.one(
            f"SELECT {_VERSION_COLUMNS} FROM versions v JOIN names n ON n.id = v.name_id "
            "WHERE v.id = %s",
            (version_id,),
        )
        return version_of_row(row) if row else None

    def get_version(self, name_id: int, version: str) -> Optional[ObjectVersion]:
        """A version by its id (deleted ones included, so callers can tell), with the
        bytes of an inline version."""
        row = self.one(
            f"SELECT {_VERSION_COLUMNS_WITH_DATA} FROM versions v JOIN names n ON n.id = v.name_id "
            f"{inline_sql.DATA_JOIN} WHERE v.name_id = %s AND v.version = %s",
            (name_id, version),
            prepared=True,
        )
        return version_of_row(row) if row else None

    def current_version(self, name_id: int) -> Optional[ObjectVersion]:
        """The newest live version (a forwarder left by a rename, as upstream, counts)."""
        row = self.one(
            f"SELECT {_VERSION_COLUMNS} FROM versions v JOIN names n ON n.id = v.name_id "
            "WHERE v.name_id = %s AND NOT v.deleted "
            "ORDER BY v.id DESC LIMIT 1",
            (name_id,),
            prepared=True,
        )
        return version_of_row(row) if row else None

    def versions(self, name_id: int) -> list[ObjectVersion]:
        """Live versions of an object, newest first (forwarders included, as upstream)."""
        rows = self.all(
            f"SELECT {_VERSION_COLUMNS} FROM versions v JOIN names n ON n.id = v.name_id "
            "WHERE v.name_id = %s AND NOT v.deleted "
            "ORDER BY v.id DESC",
            (name_id,),
        )
        return [version_of_row(row) for row in rows]

    def live_versions_of(self, name_ids: list[int]) -> list[ObjectVersion]:
        """Live versions (forwarders included) of several objects."""
        found: list[ObjectVersion] = []
        for start in range(0, len(name_ids), 500):
            batch = name_ids[start : start + 500]
            rows = self.all(
                f"SELECT {_VERSION_COLUMNS} FROM versions v JOIN names n ON n.id = v.name_id "
                f"WHERE v.name_id IN ({_placeholders(len(batch))}) AND NOT v.deleted",
                batch,
            )
            found.extend(version_of_row(row) for row in rows)
        return found

    _SUBTREE_VERSIONS = (
        "FROM versions v JOIN names n ON n.id = v.name_id WHERE NOT v.deleted "
        "AND v.renamed_to_name IS NULL AND NOT n.deleted "
        "AND (n.name = %s OR (n.name >= %s AND n.name < %s))"
    )

    def _subtree_bounds(self, name: str) -> tuple[str, str, str]:
        if name == ROOT:
            return ROOT, "/", "0"  # '0' sorts right after '/'
        return name, name + "/", name + "0"

    def subtree_version_totals(self, name: str) -> tuple[int, int]:
        """(count, total size) of the live, non-forwarding versions at or under ``name``."""
        row = self.one(
            "SELECT count(*), COALESCE(sum(v.size), 0) " + self._SUBTREE_VERSIONS,
            self._subtree_bounds(name),
        )
        return int(row[0]), int(row[1])

    def subtree_versions_page(self, name: str, after_id: int, limit: int) -> list[ObjectVersion]:
        """The next ``limit`` of those versions by id after ``after_id`` (keyset paging)."""
        rows = self.all(
            f"SELECT {_VERSION_COLUMNS} " + self._SUBTREE_VERSIONS + " AND v.id > %s "
            "ORDER BY v.id LIMIT %s",
            (*self._subtree_bounds(name), after_id, limit),
        )
        return [version_of_row(row) for row in rows]

    def delete_version(self, version_id: int) -> None:
        self.execute("UPDATE versions SET deleted = %s WHERE id = %s", (True, version_id))

    def set_version_acls(self, version_id: int, acls: dict) -> None:
        self.execute("UPDATE versions SET acls = %s WHERE id = %s", (json.dumps(acls), version_id))

    def set_version_metadata(self, version_id: int, field: str, value: Optional[str]) -> None:
        column = {
            "content-type": "content_type",
            "content-disposition": "content_disposition",
            "content-md5": "content_md5",
            "content-sha256": "content_sha256",
        }[field]  # a fixed whitelist: never a client string in SQL
        self.execute(f"UPDATE versions SET {column} = %s WHERE id = %s", (value, version_id))

    def storage_key_in_use(self, storage_key: str) -> bool:
        """Whether a live version still refers to these bytes (renames share them)."""
        row = self.one(
            "SELECT 1 FROM versions WHERE storage_key = %s AND NOT deleted "
            "AND renamed_to_name IS NULL LIMIT 1",
            (storage_key,),
        )
        return row is not None

    def all_storage_keys(self) -> set[str]:
        """Storage keys of every live version (for the orphan sweep).

        Forwarders left by a rename do not count: like ``storage_key_in_use``,
        only a live, non-forwarding version keeps bytes alive.
        """
        rows = self.all(
            "SELECT storage_key FROM versions WHERE NOT deleted AND renamed_to_name IS NULL"
        )
        return {row[0] for row in rows}


class Directory:
    """The SQL directory over one connection layer (PostgreSQL or SQLite)."""

    def __init__(self, database, max_retries: int = 8):
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

"""The directory: names, versions, ACLs and tombstones in a SQL database.

:class:`~hatrac.model.directory.sql.Directory` holds every SQL statement of
the service, written once with bound parameters. Two connection layers run
it: :mod:`.postgres` (psycopg2, a connection pool, writers ordered by row
locks or SERIALIZABLE and retried on serialization failure) and
:mod:`.sqlite` (the embedded default, WAL mode, writers serialized by
``BEGIN IMMEDIATE``).
Both pass the same test suite.

Use :func:`open_directory` to get the right one for a DSN.
"""

from __future__ import annotations

from .sql import Directory, Transaction


def open_directory(dsn: str, pool_size: int = 8, max_retries: int = 8) -> Directory:
    """A directory for ``dsn``: ``sqlite:PATH`` or a PostgreSQL DSN/URL."""
    if dsn.startswith("sqlite:"):
        from .sqlite import SQLiteDatabase

        return Directory(SQLiteDatabase(dsn[len("sqlite:") :]), max_retries=max_retries)
    from .postgres import PostgresDatabase

    return Directory(PostgresDatabase(dsn, pool_size), max_retries=max_retries)


__all__ = ["Directory", "Transaction", "open_directory"]

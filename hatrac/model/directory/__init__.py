"""The directory: names, versions, ACLs and tombstones in a SQL database.

:class:`~hatrac.model.directory.sql.Directory` runs transactions; every SQL
statement of the service is in this package, written once with bound
parameters (names in :mod:`.names`, versions in :mod:`.versions`, upload jobs
in :mod:`.uploads`, accounts in :mod:`.accounts`). Two connection layers run
it: :mod:`.postgres` (psycopg2, a connection pool, writers ordered by a
table lock and SERIALIZABLE and retried on serialization failure) and
:mod:`.sqlite` (the embedded default, WAL mode, writers serialized by
``BEGIN IMMEDIATE``).
Both pass the same test suite.

Use :func:`open_directory` to get the right one for a DSN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .sql import Directory, Transaction

if TYPE_CHECKING:
    from ...config import Config


def open_directory(
    dsn: str, pool_size: int = 8, max_retries: int = 8, prepared_statements: bool = True
) -> Directory:
    """A directory for ``dsn``: ``sqlite:PATH`` or a PostgreSQL DSN/URL."""
    if dsn.startswith("sqlite:"):
        from .sqlite import SQLiteDatabase

        return Directory(SQLiteDatabase(dsn[len("sqlite:") :]), max_retries=max_retries)
    from ...extras import require

    require("psycopg2", "a PostgreSQL database_dsn")
    from .postgres import PostgresDatabase

    database = PostgresDatabase(dsn, pool_size, prepared_statements=prepared_statements)
    return Directory(database, max_retries=max_retries)


def directory_from_config(config: Config) -> Directory:
    """The directory a :class:`~hatrac.config.Config` describes (not initialized)."""
    return open_directory(
        config.database_dsn,
        config.database_pool_size,
        config.database_max_retries,
        config.database_prepared_statements,
    )


__all__ = ["Directory", "Transaction", "directory_from_config", "open_directory"]

"""SQL of small versions kept inline: the ``inline_bytes`` table.

One row per inline storage key (``inline:...``, see
:mod:`hatrac.model.storage.inline`): the bytes and when they were written.
The row is inserted by the transaction that binds the version (so it is
committed with it, or not at all); renamed versions share their key, as
they share a file. :class:`InlineBytes` is what the storage layer is given
to read a row by key, delete one no live version refers to any more, and
find orphans for ``hatrac gc``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Union

if TYPE_CHECKING:
    from .sql import Directory, Transaction

# a row no live, non-forwarding version refers to (the same rule as
# Transaction.storage_key_in_use)
_UNREFERENCED = (
    "NOT EXISTS (SELECT 1 FROM versions v WHERE v.storage_key = inline_bytes.storage_key "
    "AND NOT v.deleted AND v.renamed_to_name IS NULL)"
)


INSERT = "INSERT INTO inline_bytes (storage_key, data, created) VALUES (%s, %s, %s)"

# the columns a version read adds to carry its inline bytes (NULL for others)
DATA_COLUMN = "b.data"
DATA_JOIN = "LEFT JOIN inline_bytes b ON b.storage_key = v.storage_key"


def insert_with(
    tx: Transaction, insert_version: str, key: str, data: bytes, now: float
) -> tuple[str, tuple]:
    """The version INSERT that also stores its inline bytes: on PostgreSQL one
    statement (a data-modifying WITH, so one round trip); on SQLite, which has
    none and no round trips, the bytes are inserted first. Returns the statement
    to run and the parameters that go before the version's own."""
    if tx.dialect == "postgres":
        return f"WITH stored AS ({INSERT}) {insert_version}", (key, data, now)
    tx.execute(INSERT, (key, data, now), prepared=True)
    return insert_version, ()


def as_bytes(value: Optional[Union[bytes, memoryview]]) -> Optional[bytes]:
    """A BYTEA/BLOB column value as bytes (psycopg2 gives a memoryview)."""
    return None if value is None else bytes(value)


class InlineBytes:
    """The table of inline bytes, as the storage layer uses it (own transactions)."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def read(self, key: str) -> Optional[bytes]:
        row = self.directory.run(
            lambda tx: tx.one(
                "SELECT data FROM inline_bytes WHERE storage_key = %s", (key,), prepared=True
            )
        )
        return as_bytes(row[0]) if row else None

    def delete(self, key: str) -> None:
        """Delete the row of ``key`` unless a live version still refers to it."""
        self.directory.run(
            lambda tx: tx.execute(
                f"DELETE FROM inline_bytes WHERE storage_key = %s AND {_UNREFERENCED}", (key,)
            ),
            write=True,
        )

    def orphans(self, live_keys: set[str], older_than: float) -> list[str]:
        """Keys of rows written before ``older_than`` that no key in ``live_keys`` names."""
        rows = self.directory.run(
            lambda tx: tx.all(
                "SELECT storage_key FROM inline_bytes WHERE created < %s ORDER BY storage_key",
                (older_than,),
            )
        )
        return [row[0] for row in rows if row[0] not in live_keys]

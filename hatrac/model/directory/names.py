"""SQL of names: resolving a chain, binding, listing, tombstoning, ACLs.

:class:`NameQueries` is mixed into :class:`~hatrac.model.directory.sql.Transaction`,
whose ``execute``/``one``/``all`` its methods run their statements with.
"""

from __future__ import annotations

import json
from typing import Optional

from ...urls import ROOT
from ..resources import Name, ObjectVersion, Resolved
from . import inline as inline_sql
from .rows import (
    NAME_COLUMNS,
    NAME_COLUMNS_OF_N,
    NAME_WIDTH,
    VERSION_COLUMNS_WITH_DATA,
    name_of_row,
    resolved_chain,
    version_of_row,
)

# a namespace's live children joined by newlines (Transaction.children), in no
# particular order: the caller sorts them
CHILDREN = {
    "sqlite": "SELECT group_concat(name, char(10)) FROM names WHERE parent_id = %s AND NOT deleted",
    "postgres": "SELECT string_agg(name, E'\\n') FROM names WHERE parent_id = %s AND NOT deleted",
}


def placeholders(count: int) -> str:
    """One ``%s`` per value of an ``IN`` list."""
    return ", ".join(["%s"] * count)


class NameQueries:
    """The statements about names, as methods of a transaction."""

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
        select = f"SELECT {NAME_COLUMNS} FROM names WHERE name "
        if lock is None or not self._database.writer_locks:
            rows = self._rows_with_credential(select + f"IN ({placeholders(len(chain))})", chain)
        elif lock in ("share", "delete"):
            table_lock = "SHARE ROW EXCLUSIVE" if lock == "delete" else "ROW EXCLUSIVE"
            rows = self._rows_with_credential(
                select + f"IN ({placeholders(len(chain))})",
                chain,
                before=f"LOCK TABLE names IN {table_lock} MODE",
            )
        elif lock == "update":
            above = chain[:-1]
            rows = self._rows_with_credential(
                select + f"IN ({placeholders(len(above))})",
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
            f"SELECT {NAME_COLUMNS_OF_N}, {VERSION_COLUMNS_WITH_DATA} FROM names n "
            "LEFT JOIN versions v ON n.name = %s AND v.id = ("
            "SELECT max(c.id) FROM versions c WHERE c.name_id = n.id AND NOT c.deleted) "
            f"{inline_sql.DATA_JOIN} WHERE n.name IN ({placeholders(len(chain))})",
            [name, *chain],
        )
        current = None
        for row in rows:
            if row[NAME_WIDTH] is not None:
                current = version_of_row(row[NAME_WIDTH:])
        return resolved_chain(name, chain, [name_of_row(row) for row in rows]), current

    def create_name(
        self, name: str, parent_id: Optional[int], kind: str, acls: dict, now: float
    ) -> Optional[Name]:
        """Bind a new name; None when the name is already bound (or a tombstone)."""
        row = self.one(
            f"INSERT INTO names (name, parent_id, kind, acls, deleted, created) "
            f"VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING "
            f"RETURNING {NAME_COLUMNS}",
            (name, parent_id, kind, json.dumps(acls), False, now),
            prepared=True,
        )
        return name_of_row(row) if row else None

    def get_name(self, name: str) -> Optional[Name]:
        row = self.one(f"SELECT {NAME_COLUMNS} FROM names WHERE name = %s", (name,))
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
            f"SELECT {NAME_COLUMNS} FROM names WHERE name >= %s AND name < %s "
            "AND NOT deleted ORDER BY name",
            (low, high),
        )
        return [name_of_row(row) for row in rows]

    def delete_names(self, ids: list[int]) -> None:
        """Turn names into tombstones, and delete all their versions."""
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = placeholders(len(batch))
            self.execute(f"UPDATE names SET deleted = %s WHERE id IN ({marks})", [True, *batch])
            self.execute(
                f"UPDATE versions SET deleted = %s WHERE name_id IN ({marks}) AND NOT deleted",
                [True, *batch],
            )

    def set_name_acls(self, name_id: int, acls: dict) -> None:
        self.execute("UPDATE names SET acls = %s WHERE id = %s", (json.dumps(acls), name_id))

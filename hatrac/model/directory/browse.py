"""SQL of the web interface's listings: a page of children with their current versions.

One statement returns up to ``limit`` live children of a namespace, each with
the size, type, time and id of its current version (none for namespaces and
for objects that have no version yet; found by the ``(name_id, id)`` index
of versions). In name order (ascending or descending) the page starts after
a given name: keyset paging on the ``(parent_id, name, deleted)`` index, so
page 200 of a namespace of 100,000 children costs what page 1 does. In the
other orders (kind, size, type, modified; :data:`SORT_KEYS`) the database
orders all the children by that key, then by name, and the page is an
``OFFSET`` into that order. An optional filter keeps names whose last
segment contains a text (a bound ``LIKE`` pattern, its wildcards escaped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .sql import Transaction


@dataclass
class Child:
    """One child of a namespace as a listing page shows it."""

    name: str
    kind: str
    created: float
    version: Optional[str] = None
    size: Optional[int] = None
    content_type: Optional[str] = None
    modified: Optional[float] = None


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with ``%``, ``_`` and ``\\`` literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# the SQL of each sort key (fixed text, never from a request); no key is NULL, so
# that both databases order alike: no size sorts as -1 (before any object), no
# type as "", a namespace's time is its creation
SORT_KEYS = {
    "kind": "n.kind",
    "size": "coalesce(v.size, -1)",
    "type": "coalesce(v.content_type, '')",
    "modified": "coalesce(v.created, n.created)",
}
SORTS = ("name", *SORT_KEYS)


def children_page(
    tx: Transaction,
    namespace_id: int,
    after: str,
    limit: int,
    contains: Optional[str] = None,
    segment_start: int = 1,
    sort: str = "name",
    descending: bool = False,
    offset: int = 0,
) -> list[Child]:
    """Up to ``limit`` live children in the order ``sort`` (one of :data:`SORTS`).

    By name (in byte order), the children after ``after`` (before it, when
    ``descending``); by another key, from position ``offset`` of that order
    (ties broken by name, in the same direction). ``contains`` (in canonical
    encoded form) filters on the last segment, which begins at character
    ``segment_start`` (1-based) of a child's name; the match ignores ASCII case.
    """
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    where = "n.parent_id = %s AND NOT n.deleted"
    params: list = [namespace_id]
    direction = "DESC" if descending else "ASC"
    if sort == "name":
        if after or not descending:
            where += " AND n.name < %s" if descending else " AND n.name > %s"
            params.append(after)
        order = f"n.name {direction}"
    else:
        key = SORT_KEYS[sort]
        if sort == "type" and tx.dialect == "postgres":
            key += ' COLLATE "C"'  # byte order, as SQLite's and the names'
        order = f"{key} {direction}, n.name {direction}"
    if contains:
        where += " AND lower(substr(n.name, %s)) LIKE %s ESCAPE '\\'"
        params += [segment_start, like_pattern(contains.lower())]
    sql = (
        "SELECT n.name, n.kind, n.created, v.version, v.size, v.content_type, v.created "
        "FROM names n LEFT JOIN versions v ON v.id = ("
        "SELECT max(c.id) FROM versions c WHERE c.name_id = n.id AND NOT c.deleted "
        "AND c.renamed_to_name IS NULL) "
        f"WHERE {where} ORDER BY {order} LIMIT %s"
    )
    params.append(limit)
    if sort != "name":
        sql += " OFFSET %s"
        params.append(offset)
    return [Child(*row) for row in tx.all(sql, params)]

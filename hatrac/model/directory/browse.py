"""SQL of the web interface's listings: a page of children with their current versions.

One statement returns up to ``limit`` live children of a namespace after a
given name (keyset paging on the ``(parent_id, name)`` index, so page 200 of
a namespace of 100,000 children costs what page 1 does), each with the size,
type, time and id of its current version (none for namespaces and for
objects that have no version yet). An optional filter keeps names whose
last segment contains a text (a bound ``LIKE`` pattern, its wildcards
escaped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


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


def children_page(
    tx,
    namespace_id: int,
    after: str,
    limit: int,
    contains: Optional[str] = None,
    segment_start: int = 1,
) -> list[Child]:
    """Up to ``limit`` live children whose names sort after ``after``, in byte order.

    ``contains`` (in canonical encoded form) filters on the last segment, which
    begins at character ``segment_start`` (1-based) of a child's name;
    the match ignores ASCII case.
    """
    where = "n.parent_id = %s AND NOT n.deleted AND n.name > %s"
    params: list = [namespace_id, after]
    if contains:
        where += " AND lower(substr(n.name, %s)) LIKE %s ESCAPE '\\'"
        params += [segment_start, like_pattern(contains.lower())]
    sql = (
        "SELECT n.name, n.kind, n.created, v.version, v.size, v.content_type, v.created "
        "FROM names n LEFT JOIN versions v ON v.id = ("
        "SELECT max(c.id) FROM versions c WHERE c.name_id = n.id AND NOT c.deleted "
        "AND c.renamed_to_name IS NULL) "
        f"WHERE {where} ORDER BY n.name LIMIT %s"
    )
    params.append(limit)
    return [Child(*row) for row in tx.all(sql, params)]

"""Directory rows as the model's objects: names, versions, and their ACLs.

An ACL column is parsed once per distinct text (most rows share a handful of
ACL sets) into a :class:`FrozenAcls` that every row of that text shares, so
none may change it; code that edits ACLs copies them first.
"""

from __future__ import annotations

import functools
import json
from typing import Any, NoReturn, Optional, Union

from ..resources import Name, ObjectVersion, Resolved
from . import inline as inline_sql

# the columns name_of_row and version_of_row read, in their order (a version's
# statements join its name as n)
NAME_COLUMNS = "id, name, kind, acls, deleted, created"
NAME_COLUMNS_OF_N = ", ".join("n." + column for column in NAME_COLUMNS.split(", "))
NAME_WIDTH = len(NAME_COLUMNS.split(", "))
VERSION_COLUMNS = (
    "v.id, v.name_id, n.name, v.version, v.size, v.storage_key, v.content_type, "
    "v.content_md5, v.content_sha256, v.content_disposition, v.acls, v.created, v.deleted, "
    "v.renamed_to_name, v.renamed_to_version"
)
# a version read that also fetches the bytes of an inline version (one row)
VERSION_COLUMNS_WITH_DATA = f"{VERSION_COLUMNS}, {inline_sql.DATA_COLUMN}"


def _refuse(self: Union[list, dict], *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError("ACLs read from the directory are shared; copy them to change them")


class FrozenRoles(list):
    """The roles of one access mode as read: a list that refuses changes."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse


class FrozenAcls(dict):
    """The ACLs of a row as read: a dict (of :class:`FrozenRoles`) that refuses changes.

    Rows of the same ACL text share one (:func:`acls_of`), so none may change it:
    a caller that wants to edit ACLs copies them first (``dict(acls)``,
    :func:`~hatrac.model.acl.normalize_acls`). Both compare equal to plain ones."""

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse


@functools.lru_cache(maxsize=4096)
def acls_of(text: str) -> Any:
    """An ACL column parsed once per distinct text (most rows share a handful): a
    :class:`FrozenAcls`, or the JSON value as it is when it is not an object."""
    value = json.loads(text)
    if not isinstance(value, dict):
        return value
    return FrozenAcls(
        (mode, FrozenRoles(roles) if isinstance(roles, list) else roles)
        for mode, roles in value.items()
    )


def name_of_row(row: tuple) -> Name:
    return Name(
        id=row[0],
        name=row[1],
        kind=row[2],
        acls=acls_of(row[3]),
        deleted=bool(row[4]),
        created=row[5],
    )


def version_of_row(row: tuple) -> ObjectVersion:
    return ObjectVersion(
        id=row[0],
        name_id=row[1],
        name=row[2],
        version=row[3],
        size=row[4],
        storage_key=row[5],
        content_type=row[6],
        content_md5=row[7],
        content_sha256=row[8],
        content_disposition=row[9],
        acls=acls_of(row[10]),
        created=row[11],
        deleted=bool(row[12]),
        renamed_to=(row[13], row[14]) if row[13] is not None else None,
        inline=inline_sql.as_bytes(row[15]) if len(row) > 15 else None,
    )


def new_version(
    row_id: Optional[int],
    name_id: Optional[int],
    name: str,
    version: str,
    size: int,
    storage_key: str,
    metadata: dict,
    acls: dict,
    now: float,
) -> ObjectVersion:
    """The version a statement just inserted (row ids None when it committed too)."""
    return ObjectVersion(
        id=row_id,
        name_id=name_id,
        name=name,
        version=version,
        size=size,
        storage_key=storage_key,
        content_type=metadata.get("content-type"),
        content_md5=metadata.get("content-md5"),
        content_sha256=metadata.get("content-sha256"),
        content_disposition=metadata.get("content-disposition"),
        acls=acls,
        created=now,
    )


def resolved_chain(name: str, chain: list[str], rows: list[Name]) -> Resolved:
    """Sort the looked-up rows of a chain into ancestors, target and blocker."""
    found = {row.name: row for row in rows}
    ancestors = []
    blocker = None
    for ancestor in chain[:-1]:
        entry = found.get(ancestor)
        if entry is None:
            break
        if entry.deleted or not entry.is_namespace:
            blocker = entry
            break
        ancestors.append(entry)
    target = found.get(name)
    if target is not None and len(ancestors) != len(chain) - 1:
        # an ancestor is missing, deleted or an object: the name cannot be live
        target = None
    return Resolved(name=name, ancestors=ancestors, target=target, blocker=blocker)

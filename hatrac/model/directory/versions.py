"""SQL of versions: binding (with a new object's name), reading, listing, deleting.

:class:`VersionQueries` is mixed into :class:`~hatrac.model.directory.sql.Transaction`,
whose ``execute``/``one``/``all``/``finish`` its methods run their statements with.
"""

from __future__ import annotations

import json
from typing import Optional

from ...urls import ROOT
from ..resources import OBJECT, ObjectVersion
from . import inline as inline_sql
from .names import placeholders
from .rows import VERSION_COLUMNS, VERSION_COLUMNS_WITH_DATA, new_version, version_of_row


class VersionQueries:
    """The statements about versions, as methods of a transaction."""

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
        name_acls_text = json.dumps(name_acls)
        params: list = [name, parent_id, OBJECT, name_acls_text, False, now]
        if inline is not None:
            parts.append(f"stored AS ({inline_sql.INSERT})")
            params += [storage_key, inline, now]
        statement = (
            f"WITH {', '.join(parts)} {self._INSERT_VERSION} "
            "SELECT made.id, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM made "
            "RETURNING id, name_id"
        )
        params += [*self._version_values(version, size, storage_key, metadata)]
        params += [name_acls_text if acls == name_acls else json.dumps(acls), now, False]
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
            f"SELECT {VERSION_COLUMNS} FROM versions v JOIN names n ON n.id = v.name_id "
            "WHERE v.id = %s",
            (version_id,),
        )
        return version_of_row(row) if row else None

    def get_version(self, name_id: int, version: str) -> Optional[ObjectVersion]:
        """A version by its id (deleted ones included, so callers can tell), with the
        bytes of an inline version."""
        row = self.one(
            f"SELECT {VERSION_COLUMNS_WITH_DATA} FROM versions v JOIN names n ON n.id = v.name_id "
            f"{inline_sql.DATA_JOIN} WHERE v.name_id = %s AND v.version = %s",
            (name_id, version),
            prepared=True,
        )
        return version_of_row(row) if row else None

    def current_version(self, name_id: int) -> Optional[ObjectVersion]:
        """The newest live version (a forwarder left by a rename, as upstream, counts)."""
        row = self.one(
            f"SELECT {VERSION_COLUMNS} FROM versions v JOIN names n ON n.id = v.name_id "
            "WHERE v.name_id = %s AND NOT v.deleted "
            "ORDER BY v.id DESC LIMIT 1",
            (name_id,),
            prepared=True,
        )
        return version_of_row(row) if row else None

    def versions(self, name_id: int) -> list[ObjectVersion]:
        """Live versions of an object, newest first (forwarders included, as upstream)."""
        rows = self.all(
            f"SELECT {VERSION_COLUMNS} FROM versions v JOIN names n ON n.id = v.name_id "
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
                f"SELECT {VERSION_COLUMNS} FROM versions v JOIN names n ON n.id = v.name_id "
                f"WHERE v.name_id IN ({placeholders(len(batch))}) AND NOT v.deleted",
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
            f"SELECT {VERSION_COLUMNS} " + self._SUBTREE_VERSIONS + " AND v.id > %s "
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

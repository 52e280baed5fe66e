"""The SQL of ``hatrac import-upstream``: reading upstream's schema, writing ours.

:class:`UpstreamDatabase` reads an upstream Hatrac database (schema
``hatrac``: tables ``name``, ``version``, ``upload``, ``chunk``) in one
read-only REPEATABLE READ transaction, through server-side cursors, so rows
stream in batches and memory stays flat however large the deployment. It
tolerates every schema generation upstream has had, by looking at which
columns exist. Nothing here can write to upstream's database: the session is
read-only.

The writers insert imported rows into our directory in batches, each
``ON CONFLICT DO NOTHING``, so an interrupted import can simply be run again.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Optional

# columns every generation has; without them the database is not upstream's
REQUIRED = {
    "name": {"id", "name", "subtype", "is_deleted", "owner", "read"},
    "version": {"id", "nameid", "version", "nbytes", "is_deleted", "owner", "read"},
    "upload": {"id", "nameid", "job", "nbytes", "chunksize", "owner"},
}
NAME_ACL_COLUMNS = (
    "owner",
    "create",
    "update",
    "read",
    "subtree-owner",
    "subtree-create",
    "subtree-update",
    "subtree-read",
)
KNOWN = {
    "name": REQUIRED["name"] | set(NAME_ACL_COLUMNS) | {"pid", "ancestors"},
    "version": REQUIRED["version"] | {"metadata", "aux", "content_type", "content_md5"},
    "upload": REQUIRED["upload"] | {"metadata", "created_on", "content_type", "content_md5"},
    "chunk": {"uploadid", "position", "aux"},
}
BATCH = 2000


class UnknownSchema(Exception):
    """The database does not hold a schema generation of upstream Hatrac."""


def _quote(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


class UpstreamDatabase:
    """A read-only view of an upstream Hatrac database."""

    def __init__(self, dsn: str) -> None:
        import psycopg2

        self.connection = psycopg2.connect(dsn)
        self.connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
        self.columns = self._columns()

    def close(self) -> None:
        try:
            self.connection.rollback()  # read-only: there is nothing to commit
        finally:
            self.connection.close()

    def _columns(self) -> dict[str, set[str]]:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'hatrac'"
            )
            found: dict[str, set[str]] = {}
            for table, column in cursor.fetchall():
                found.setdefault(table, set()).add(column)
        return found

    def generation(self) -> tuple[str, list[str]]:
        """The schema generation (a label) and notes on what is unusual.

        Raises :class:`UnknownSchema` when a table or column every generation
        has is missing.
        """
        if not self.columns:
            raise UnknownSchema("there is no schema 'hatrac' with upstream's tables in it")
        for table, needed in REQUIRED.items():
            missing = needed - self.columns.get(table, set())
            if table not in self.columns:
                raise UnknownSchema(f"table hatrac.{table} is missing")
            if missing:
                raise UnknownSchema(
                    f"table hatrac.{table} lacks column(s) {', '.join(sorted(missing))}"
                )
        notes = []
        for table, columns in self.columns.items():
            unknown = columns - KNOWN.get(table, set())
            if table not in KNOWN:
                notes.append(f"table hatrac.{table} is not upstream's; ignored")
            elif unknown:
                notes.append(
                    f"hatrac.{table} has unknown column(s) {', '.join(sorted(unknown))}; ignored"
                )
        version = self.columns["version"]
        if "metadata" not in version:
            if not {"content_type", "content_md5"} & version:
                raise UnknownSchema("hatrac.version has neither metadata nor content_* columns")
            label = "2015 (content_type/content_md5 columns)"
        elif "aux" not in version:
            label = "2016-2021 (metadata, no aux)"
        elif "created_on" not in self.columns["upload"]:
            label = "May 2021 (aux, no upload.created_on)"
        else:
            label = "June 2021 or later (current)"
        if "ancestors" not in self.columns["name"]:
            label += "; names without ancestors (before March 2016)"
        return label, notes

    def _stream(self, sql: str, params: tuple = ()) -> Iterator[tuple]:
        cursor = self.connection.cursor(name=f"import_{id(sql)}")
        cursor.itersize = BATCH
        try:
            cursor.execute(sql, params)
            yield from cursor
        finally:
            cursor.close()

    def _count(self, table: str, condition: str = "") -> int:
        # table and condition are constants of this module, never input
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM hatrac.{table} {condition}")
            return int(cursor.fetchone()[0])

    def counts(self) -> dict[str, int]:
        return {
            "names": self._count("name"),
            "versions": self._count("version"),
            "upload_jobs": self._count("upload"),
        }

    def _acl_list(self, table: str, columns: tuple[str, ...]) -> str:
        present = self.columns[table]
        return ", ".join((f"t.{_quote(c)}" if c in present else "NULL::text[]") for c in columns)

    def names(self) -> Iterator[tuple]:
        """(id, name, subtype, is_deleted, depth, *eight ACL arrays), parents first."""
        return self._stream(
            "SELECT t.id, t.name, t.subtype, t.is_deleted, "
            "length(t.name) - length(replace(t.name, '/', '')) AS depth, "
            + self._acl_list("name", NAME_ACL_COLUMNS)
            + " FROM hatrac.name t ORDER BY depth, t.id"
        )

    def versions(self) -> Iterator[tuple]:
        """(id, nameid, object name, version, nbytes, is_deleted, owner, read,
        metadata, aux, legacy content_type, legacy content_md5), in creation order."""
        present = self.columns["version"]
        metadata = "t.metadata::text" if "metadata" in present else "NULL::text"
        aux = "t.aux::text" if "aux" in present else "NULL::text"
        legacy_type = "t.content_type" if "content_type" in present else "NULL::text"
        legacy_md5 = "t.content_md5" if "content_md5" in present else "NULL::text"
        return self._stream(
            "SELECT t.id, t.nameid, n.name, t.version, t.nbytes, t.is_deleted, t.owner, t.read, "
            f"{metadata}, {aux}, {legacy_type}, {legacy_md5} "
            "FROM hatrac.version t LEFT JOIN hatrac.name n ON n.id = t.nameid ORDER BY t.id"
        )

    def uploads(self) -> Iterator[tuple]:
        """(id, object name, job, nbytes, chunksize, owner, created_on, chunk count)."""
        created = "t.created_on::text" if "created_on" in self.columns["upload"] else "NULL::text"
        chunks = (
            "(SELECT count(*) FROM hatrac.chunk c WHERE c.uploadid = t.id)"
            if "chunk" in self.columns
            else "0"
        )
        return self._stream(
            f"SELECT t.id, n.name, t.job, t.nbytes, t.chunksize, t.owner, {created}, {chunks} "
            "FROM hatrac.upload t LEFT JOIN hatrac.name n ON n.id = t.nameid ORDER BY t.id"
        )


# -- writing our directory -------------------------------------------------------------
def _bulk(tx: Any, sql_postgres: str, template: str, sql_sqlite: str, rows: list[tuple]) -> list:
    """Run a many-row statement; returns the RETURNING rows."""
    if not rows:
        return []
    cursor = tx._cursor
    if tx.dialect == "postgres":
        from psycopg2.extras import execute_values

        return execute_values(
            cursor, sql_postgres, rows, template=template, page_size=len(rows), fetch=True
        )
    returned = []
    sql = sql_sqlite.replace("%s", "?")
    for row in rows:
        cursor.execute(sql, row)
        returned.extend(cursor.fetchall())
    return returned


def insert_names(tx: Any, rows: list[tuple]) -> set[str]:
    """Bind names: rows of (name, parent name, kind, acls JSON, deleted, created).

    Parents must already exist (callers insert one depth at a time). Returns
    the names bound now (the others were bound before).
    """
    returned = _bulk(
        tx,
        "INSERT INTO names (name, parent_id, kind, acls, deleted, created) "
        "SELECT v.name, p.id, v.kind, v.acls, v.deleted, v.created "
        "FROM (VALUES %s) AS v(name, parent, kind, acls, deleted, created) "
        "JOIN names p ON p.name = v.parent AND p.kind = 'namespace' "
        "ON CONFLICT (name) DO NOTHING RETURNING name",
        "(%s, %s, %s, %s, %s::boolean, %s::double precision)",
        "INSERT INTO names (name, parent_id, kind, acls, deleted, created) "
        "SELECT %s, p.id, %s, %s, %s, %s FROM names p WHERE p.name = %s AND p.kind = 'namespace' "
        "ON CONFLICT (name) DO NOTHING RETURNING name",
        rows if tx.dialect == "postgres" else [(r[0], r[2], r[3], r[4], r[5], r[1]) for r in rows],
    )
    return {row[0] for row in returned}


def names_by_name(tx: Any, names: list[str]) -> dict[str, tuple]:
    """name -> (id, kind, acls, deleted) of those bound."""
    found: dict[str, tuple] = {}
    for start in range(0, len(names), 500):
        batch = names[start : start + 500]
        marks = ", ".join(["%s"] * len(batch))
        for row in tx.all(
            f"SELECT name, id, kind, acls, deleted FROM names WHERE name IN ({marks})", batch
        ):
            found[row[0]] = (row[1], row[2], json.loads(row[3]), bool(row[4]))
    return found


def map_upstream_names(tx: Any, rows: list[tuple]) -> None:
    """Record (upstream id, our name id, upstream spelling); known ones are skipped."""
    _bulk(
        tx,
        "INSERT INTO upstream_names (upstream_id, name_id, upstream_name) VALUES %s "
        "ON CONFLICT DO NOTHING RETURNING upstream_id",
        "(%s::bigint, %s::bigint, %s)",
        "INSERT INTO upstream_names (upstream_id, name_id, upstream_name) VALUES (%s, %s, %s) "
        "ON CONFLICT DO NOTHING RETURNING upstream_id",
        rows,
    )


def upstream_mapping(tx: Any, upstream_ids: list[int]) -> dict[int, tuple[int, str]]:
    """upstream name id -> (our name id, our name) of those imported."""
    found: dict[int, tuple[int, str]] = {}
    for start in range(0, len(upstream_ids), 500):
        batch = upstream_ids[start : start + 500]
        marks = ", ".join(["%s"] * len(batch))
        for row in tx.all(
            "SELECT u.upstream_id, u.name_id, n.name FROM upstream_names u "
            f"JOIN names n ON n.id = u.name_id WHERE u.upstream_id IN ({marks})",
            batch,
        ):
            found[int(row[0])] = (int(row[1]), row[2])
    return found


def upstream_name_of(tx: Any, name_id: int) -> Optional[str]:
    row = tx.one("SELECT upstream_name FROM upstream_names WHERE name_id = %s", (name_id,))
    return row[0] if row else None


def set_root_acls(tx: Any, acls: dict) -> None:
    tx.execute("UPDATE names SET acls = %s WHERE name = %s", (json.dumps(acls), "/"))


def insert_versions(tx: Any, rows: list[tuple]) -> int:
    """Bind versions: rows of (name_id, version, size, storage_key, content_type, md5,
    sha256, disposition, acls JSON, created, deleted, renamed-to name, renamed-to
    version), in creation order. Returns how many were new."""
    columns = (
        "name_id, version, size, storage_key, content_type, content_md5, content_sha256, "
        "content_disposition, acls, created, deleted, renamed_to_name, renamed_to_version"
    )
    returned = _bulk(
        tx,
        f"INSERT INTO versions ({columns}) VALUES %s "
        "ON CONFLICT (name_id, version) DO NOTHING RETURNING id",
        "(%s::bigint, %s, %s::bigint, %s, %s, %s, %s, %s, %s, %s::double precision, "
        "%s::boolean, %s, %s)",
        f"INSERT INTO versions ({columns}) VALUES "
        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (name_id, version) DO NOTHING RETURNING id",
        rows,
    )
    return len(returned)


def versions_without_digests(tx: Any, after_id: int, limit: int) -> list[tuple]:
    """(id, storage_key, size) of live versions lacking a digest, by id after ``after_id``."""
    return tx.all(
        "SELECT id, storage_key, size FROM versions WHERE id > %s AND NOT deleted "
        "AND renamed_to_name IS NULL AND (content_md5 IS NULL OR content_sha256 IS NULL) "
        "ORDER BY id LIMIT %s",
        (after_id, limit),
    )


def set_digests(tx: Any, version_id: int, md5_b64: str, sha256_b64: str) -> None:
    """Record digests computed from the stored bytes, only where none is recorded."""
    tx.execute(
        "UPDATE versions SET content_md5 = COALESCE(content_md5, %s), "
        "content_sha256 = COALESCE(content_sha256, %s) WHERE id = %s",
        (md5_b64, sha256_b64, version_id),
    )

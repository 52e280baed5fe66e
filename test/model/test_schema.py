"""Schema upgrades of existing databases: the indexes of listings and current versions."""

from __future__ import annotations

import os
import uuid

import pytest
from backends import DIRECTORY_BACKENDS

from hatrac.model.directory import open_directory, schema
from hatrac.model.directory.names import CHILDREN

LISTING_MIGRATION = "names-listing-1"


@pytest.fixture(params=DIRECTORY_BACKENDS)
def fresh_dsn(request, tmp_path) -> str:
    """An empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'db.sqlite3'}"
    server = request.getfixturevalue("postgres")
    return server.new_schema(f"schema_{os.getpid()}_{uuid.uuid4().hex[:8]}")


def _indexes(tx, table: str) -> set[str]:
    if tx.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s"
    else:
        sql = (
            "SELECT indexname FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = %s"
        )
    return {row[0] for row in tx.all(sql, (table,))}


def _parent_indexes(tx) -> set[str]:
    return {name for name in _indexes(tx, "names") if name.startswith("names_parent")}


def _listing_plan(tx, namespace_id: int) -> str:
    """The plan of the very statement a listing runs."""
    if tx.dialect == "sqlite":
        rows = tx.all("EXPLAIN QUERY PLAN " + CHILDREN["sqlite"], (namespace_id,))
        return "\n".join(row[-1] for row in rows)
    # the test's table is tiny, where a sequential scan is cheaper: ask whether
    # the index can serve the statement alone, as it does on a real namespace
    tx.execute("SET LOCAL enable_seqscan = off")
    tx.execute("SET LOCAL enable_bitmapscan = off")
    rows = tx.all("EXPLAIN " + CHILDREN["postgres"], (namespace_id,))
    return "\n".join(row[0] for row in rows)


def test_an_existing_database_gains_the_listing_index_and_lists_the_same(fresh_dsn, monkeypatch):
    everything = list(schema.MIGRATIONS)
    before = everything[: [m.name for m in everything].index(LISTING_MIGRATION)]
    monkeypatch.setattr(schema, "MIGRATIONS", before)
    directory = open_directory(fresh_dsn)
    try:
        directory.initialize({})

        def build(tx):
            root = tx.get_name("/")
            ns = tx.create_name("/ns", root.id, "namespace", {}, 0.0)
            other = tx.create_name("/other", root.id, "namespace", {}, 0.0)
            made = {}
            # inserted out of order; two raw non-ASCII names, whose UTF-8 bytes
            # order them as their code points do (U+FFEF before U+1F600)
            names = ("/ns/b", "/ns/\U0001f600", "/ns/a", "/ns/B", "/ns/\uffef", "/ns/_")
            for name in (*names, "/ns/a0", "/ns/%C3%A9", "/ns/gone"):
                made[name] = tx.create_name(name, ns.id, "object", {}, 0.0)
            tx.create_name("/other/x", other.id, "object", {}, 0.0)
            tx.delete_names([made["/ns/gone"].id])
            return ns.id

        ns_id = directory.run(build, write=True)
        old_listing = directory.run(lambda tx: tx.children(ns_id))
        assert directory.run(_parent_indexes) == {"names_parent", "names_parent_name"}
        assert "versions_name_current" not in directory.run(lambda tx: _indexes(tx, "versions"))

        # the previous release's database, upgraded by the next start
        monkeypatch.setattr(schema, "MIGRATIONS", everything)
        directory.initialize({})
        assert LISTING_MIGRATION in directory.run(schema.applied_migrations)
        assert directory.run(_parent_indexes) == {"names_parent_live"}
        # PostgreSQL only (SQLite finds a current version by (name_id, version))
        on_postgres = directory.database.dialect == "postgres"
        versions_indexes = directory.run(lambda tx: _indexes(tx, "versions"))
        assert ("versions_name_current" in versions_indexes) == on_postgres
        listing = directory.run(lambda tx: tx.children(ns_id))
        assert listing == old_listing
        # byte order, the deleted name left out
        expected = ["/ns/%C3%A9", "/ns/B", "/ns/_", "/ns/a", "/ns/a0", "/ns/b"]
        assert listing == [*expected, "/ns/\uffef", "/ns/\U0001f600"]
        # (a write transaction: SET LOCAL needs one; nothing is written)
        plan = directory.run(lambda tx: _listing_plan(tx, ns_id), write=True)
        if directory.database.dialect == "sqlite":
            assert "COVERING INDEX names_parent_live" in plan
        else:
            assert "Index Only Scan using names_parent_live" in plan
            assert "Sort" not in plan

        # a name deleted after the upgrade leaves the listing too
        directory.run(lambda tx: tx.delete_names([tx.get_name("/ns/B").id]), write=True)
        assert "/ns/B" not in directory.run(lambda tx: tx.children(ns_id))
    finally:
        directory.close()


def test_a_current_version_is_found_by_its_index_before_statistics_exist(postgres):
    """The GET path's statement (a name's newest live version, max(id)) planned while
    the versions table has a size but no statistics yet, as after a bulk load: it
    probes versions_name_current, where it used to walk the primary key backwards
    through every version (all of them for a namespace, which has none)."""
    dsn = postgres.new_schema(f"current_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    directory = open_directory(dsn, pool_size=1)
    try:
        directory.initialize({})

        def fill(tx):
            ns = tx.create_name("/ns", tx.get_name("/").id, "namespace", {}, 0.0)
            tx.create_name("/ns/sub", ns.id, "namespace", {}, 0.0)
            for number in range(400):
                key = f"inline:k{number}"
                tx.create_object_version(
                    f"/ns/o{number}", ns.id, {}, f"V{number}", 1, key, {}, {}, 0.0, b"x"
                )

        directory.run(fill, write=True)
        # its size known to the planner (VACUUM), its columns' statistics not (no ANALYZE)
        directory.run(lambda tx: tx.execute("VACUUM versions"))

        def plans(tx):
            found = []
            for target in ("/ns/sub", "/ns/o7"):
                chain = ["/", "/ns", target]
                for _ in range(7):  # past the five custom plans: the cached generic one
                    resolved, _current = tx.resolve_current(target, chain)
                    assert resolved.target.name == target
                rows = tx.all("SELECT name, statement FROM pg_prepared_statements")
                (name,) = [n for n, text in rows if "LEFT JOIN versions v" in text]
                marks = ", ".join(["%s"] * (len(chain) + 1))
                explained = tx.all(f"EXPLAIN EXECUTE {name} ({marks})", (target, *chain))
                found.append("\n".join(row[0] for row in explained))
            return found

        for plan in directory.run(plans):
            assert "versions_name_current" in plan, plan
            assert "Backward using versions_pkey" not in plan, plan
    finally:
        directory.close()

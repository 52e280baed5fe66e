"""The plans PostgreSQL caches for the hot statements of a new, small database.

A connection plans a prepared statement once and keeps the plan until a
table's statistics change. One planned while the tables are small (a new
database, before autovacuum's first ANALYZE) must still read by index, or
every GET scans all names and hashes all versions, and every PUT scans all
names, more of them as the tables grow (``PLANNER_OPTIONS`` in
hatrac/model/directory/postgres.py).
"""

from __future__ import annotations

import os

from hatrac.model.directory import open_directory
from hatrac.model.directory.postgres import PLANNER_OPTIONS, session_options

OBJECTS = 400


def _explain(tx, text_start: str, params: tuple) -> str:
    """The plan the connection uses for its prepared statement whose text starts so."""
    rows = tx.all("SELECT name, statement FROM pg_prepared_statements")
    names = [name for name, statement in rows if text_start in statement]
    assert len(names) == 1, rows
    marks = ", ".join(["%s"] * len(params))
    return "\n".join(row[0] for row in tx.all(f"EXPLAIN EXECUTE {names[0]} ({marks})", params))


def test_hot_statements_of_a_small_new_database_read_by_index(postgres):
    directory = open_directory(postgres.new_schema(f"planner_small_{os.getpid()}"), pool_size=1)
    try:
        directory.initialize({})

        def fill(tx):
            root = tx.get_name("/")
            ns = tx.create_name("/ns", root.id, "namespace", {}, 0.0)
            for number in range(OBJECTS):
                key = f"inline:k{number}"
                tx.create_object_version(
                    f"/ns/o{number}", ns.id, {}, f"V{number}", 1, key, {}, {}, 0.0, b"x"
                )

        directory.run(fill, write=True)
        chain = ["/", "/ns", "/ns/o7"]

        def read(tx):
            for _ in range(7):  # the first five executions are planned anew each time
                resolved, current = tx.resolve_current("/ns/o7", chain)
                assert current.inline == b"x" and resolved.target.name == "/ns/o7"
            return _explain(tx, "LEFT JOIN versions v", ("/ns/o7", *chain))

        def write(tx):
            for _ in range(7):
                tx.resolve("/ns/o7", chain, lock="share")
            return _explain(tx, "FROM names WHERE name IN", tuple(chain))

        for plan in (directory.run(read), directory.run(write, write=True)):
            assert "Seq Scan" not in plan and "Hash" not in plan, plan
            assert "names_name_key" in plan, plan
    finally:
        directory.close()


def test_sessions_plan_with_our_costs_and_a_dsn_can_override_them(postgres):
    dsn = postgres.new_schema(f"planner_options_{os.getpid()}")  # its options set the search_path
    assert session_options(dsn).startswith(PLANNER_OPTIONS + " ")
    assert "search_path" in session_options(dsn)
    assert session_options("host=x dbname=y") == PLANNER_OPTIONS
    assert session_options("not a dsn") is None
    show = "SELECT current_setting('random_page_cost'), current_setting('search_path')"
    directory = open_directory(dsn, pool_size=1)
    try:
        cost, path = directory.run(lambda tx: tx.one(show))
        assert cost == "1.1" and "planner_options" in path
    finally:
        directory.close()
    given = dsn.replace("options='", "options='-c random_page_cost=2 ")
    directory = open_directory(given, pool_size=1)
    try:
        cost, path = directory.run(lambda tx: tx.one(show))
        assert cost == "2" and "planner_options" in path
    finally:
        directory.close()

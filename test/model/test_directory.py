"""The SQL directory on both databases: schema set-up, lookups, transactions."""

from __future__ import annotations

import threading

import pytest

from hatrac.model.directory import open_directory
from hatrac.model.directory.schema import MIGRATIONS


@pytest.fixture
def dsn(config) -> str:
    return config.get("database_dsn") or "sqlite:" + config["data_directory"] + "/db.sqlite3"


def test_concurrent_initialization_applies_each_migration_once(dsn):
    errors = []

    def initialize():
        directory = open_directory(dsn)
        try:
            directory.initialize({"owner": ["admin"]})
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            directory.close()

    threads = [threading.Thread(target=initialize) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    directory = open_directory(dsn)
    applied = directory.run(lambda tx: [r[0] for r in tx.all("SELECT name FROM hatrac_schema")])
    assert sorted(applied) == sorted(m.name for m in MIGRATIONS)
    roots = directory.run(lambda tx: tx.all("SELECT count(*) FROM names WHERE name = '/'"))
    assert roots[0][0] == 1
    directory.close()


def test_initialize_is_idempotent_and_keeps_root_acls(dsn):
    directory = open_directory(dsn)
    directory.initialize({"owner": ["first"]})
    directory.initialize({"owner": ["second"]})
    root = directory.run(lambda tx: tx.get_name("/"))
    assert root.acls == {"owner": ["first"]}
    directory.close()


def test_resolve_returns_chain_in_one_lookup(dsn):
    directory = open_directory(dsn)
    directory.initialize({})

    def build(tx):
        root = tx.get_name("/")
        a = tx.create_name("/a", root.id, "namespace", {"read": ["x"]}, 0.0)
        b = tx.create_name("/a/b", a.id, "namespace", {}, 0.0)
        tx.create_name("/a/b/o", b.id, "object", {}, 0.0)
        assert tx.create_name("/a/b/o", b.id, "object", {}, 0.0) is None  # already bound

    directory.run(build, write=True)
    resolved = directory.run(lambda tx: tx.resolve("/a/b/o", ["/", "/a", "/a/b", "/a/b/o"]))
    assert [n.name for n in resolved.ancestors] == ["/", "/a", "/a/b"]
    assert resolved.target.is_object
    assert resolved.ancestors[1].acls == {"read": ["x"]}
    below_object = directory.run(
        lambda tx: tx.resolve("/a/b/o/x", ["/", "/a", "/a/b", "/a/b/o", "/a/b/o/x"])
    )
    assert below_object.blocker.name == "/a/b/o"
    assert below_object.target is None
    descendants = directory.run(lambda tx: [n.name for n in tx.descendants("/a")])
    assert descendants == ["/a/b", "/a/b/o"]
    directory.close()


def test_failed_transaction_rolls_back(dsn):
    directory = open_directory(dsn)
    directory.initialize({})

    def half(tx):
        root = tx.get_name("/")
        tx.create_name("/half", root.id, "namespace", {}, 0.0)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        directory.run(half, write=True)
    assert directory.run(lambda tx: tx.get_name("/half")) is None
    directory.close()


def test_names_compare_bytewise_on_a_linguistic_database(postgres):
    """A cluster whose default collation is linguistic (en-US here, as on many
    installs) must still find every name of a subtree and list in byte order."""
    postgres.psql(
        "CREATE DATABASE hatrac_icu TEMPLATE template0 ENCODING 'UTF8' "
        "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
    )
    directory = open_directory(postgres.dsn(database="hatrac_icu"))
    try:
        directory.initialize({})

        def build(tx):
            root = tx.get_name("/")
            a = tx.create_name("/a", root.id, "namespace", {}, 0.0)
            b = tx.create_name("/a/b", a.id, "namespace", {}, 0.0)
            tx.create_name("/a/b/c", b.id, "object", {}, 0.0)
            for name in ("/a/Z", "/a/_x", "/a/a", "/a/B"):
                tx.create_name(name, a.id, "object", {}, 0.0)
            for name in ("/a0", "/a-b", "/aB", "/a.b"):
                tx.create_name(name, root.id, "object", {}, 0.0)
            return a.id

        a_id = directory.run(build, write=True)
        below = directory.run(lambda tx: [n.name for n in tx.descendants("/a")])
        assert below == ["/a/B", "/a/Z", "/a/_x", "/a/a", "/a/b", "/a/b/c"]
        listed = directory.run(lambda tx: tx.children(a_id))
        assert listed == ["/a/B", "/a/Z", "/a/_x", "/a/a", "/a/b"]
    finally:
        directory.close()
        postgres.psql("DROP DATABASE hatrac_icu")


def test_without_prepared_statements_nothing_is_prepared(postgres):
    """For PgBouncer's transaction pooling: the same answers, no PREPARE."""
    directory = open_directory(
        postgres.new_schema("unprepared"), pool_size=1, prepared_statements=False
    )
    try:
        directory.initialize({})

        def build(tx):
            root = tx.get_name("/")
            a = tx.create_name("/a", root.id, "namespace", {}, 0.0)
            b = tx.create_name("/a/b", a.id, "object", {}, 0.0)
            tx.create_version(b.id, "V1", 1, "k", {}, {}, 0.0)
            return a.id

        a_id = directory.run(build, write=True)
        chain = ["/", "/a", "/a/b"]
        resolved, current = directory.run(lambda tx: tx.resolve_current("/a/b", chain))
        assert resolved.target.name == "/a/b" and current.version == "V1"
        assert directory.run(lambda tx: tx.children(a_id)) == ["/a/b"]
        locked = directory.run(
            lambda tx: tx.resolve("/a/c", ["/", "/a", "/a/c"], lock="share"), write=True
        )
        assert [n.name for n in locked.ancestors] == ["/", "/a"]
        prepared = directory.run(lambda tx: tx.all("SELECT name FROM pg_prepared_statements"))
        assert prepared == []
    finally:
        directory.close()

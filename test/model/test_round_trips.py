"""Round trips of the small requests on PostgreSQL, counted at the connection.

Every ``cursor.execute`` of psycopg2 is one round trip (a BEGIN or LOCK goes
with the statement after it). A small GET is one; a small PUT, new object or
new version, is two: the lookup, then one statement that binds the version
(and a new object's name) with its bytes and carries the COMMIT.
"""

from __future__ import annotations

import psycopg2.extensions
import pytest

from hatrac.model.directory import postgres as pg
from hatrac.model.directory.sql import Transaction

PG = [("postgres", "filesystem")]


class _CountingCursor(psycopg2.extensions.cursor):
    sent: list = []

    def execute(self, query, vars=None):
        _CountingCursor.sent.append(query)
        return super().execute(query, vars)


@pytest.fixture
def sent(monkeypatch):
    """The statement texts sent since the last clear(), one per round trip."""
    cursor = pg._Connection.cursor

    def counting(self, *args, **kwargs):
        kwargs.setdefault("cursor_factory", _CountingCursor)
        return cursor(self, *args, **kwargs)

    monkeypatch.setattr(pg._Connection, "cursor", counting)
    _CountingCursor.sent = []
    return _CountingCursor.sent


@pytest.mark.parametrize("backends", PG, indirect=True)
def test_small_get_is_one_round_trip_and_small_put_two(client, ns, sent):
    # the first of each kind prepares its statements (once per connection)
    for warm in ("w1", "w2"):
        assert client.put(f"{ns}/{warm}", data=b"x", user="alice").status == 201
        assert client.put(f"{ns}/{warm}", data=b"y", user="alice").status == 201
        assert client.get(f"{ns}/{warm}", user="alice").status == 200
    cases = [
        ("new object", lambda: client.put(f"{ns}/fresh", data=b"1" * 1024, user="alice"), 201),
        ("new version", lambda: client.put(f"{ns}/fresh", data=b"2" * 1024, user="alice"), 201),
        ("GET", lambda: client.get(f"{ns}/fresh", user="alice"), 200),
    ]
    for what, request, status in cases:
        sent.clear()
        reply = request()
        assert reply.status == status, (what, reply.text)
        expected = 1 if what == "GET" else 2
        assert len(sent) == expected, (what, sent)
        if what != "GET":
            assert sent[-1].rstrip().endswith("COMMIT"), (what, sent)
    assert client.get(f"{ns}/fresh", user="alice").body == b"2" * 1024
    assert len(client.get(f"{ns}/fresh;versions", user="alice").json()) == 2


@pytest.mark.parametrize("backends", PG, indirect=True)
def test_a_name_bound_meanwhile_starts_the_put_over(client, app, ns, monkeypatch):
    """The lookup missed a name another PUT bound before our INSERT: the unique
    violation stops the statement (and its COMMIT); the PUT starts over and adds
    a version to that object, leaving no stray bytes."""
    assert client.put(f"{ns}/raced", data=b"first", user="alice").status == 201
    resolve = Transaction.resolve
    hidden = {"times": 1}

    def missing_once(self, name, chain, lock=None):
        found = resolve(self, name, chain, lock)
        if name.endswith("/raced") and hidden["times"]:
            hidden["times"] -= 1
            found.target = None  # as if looked up just before the other PUT committed
        return found

    monkeypatch.setattr(Transaction, "resolve", missing_once)
    reply = client.put(f"{ns}/raced", data=b"second", user="alice")
    assert reply.status == 201, reply.text
    assert hidden["times"] == 0
    monkeypatch.undo()
    assert len(client.get(f"{ns}/raced;versions", user="alice").json()) == 2
    assert client.get(f"{ns}/raced", user="alice").body == b"second"
    directory = app.extensions["hatrac"].directory
    rows = directory.run(lambda tx: tx.one("SELECT count(*) FROM inline_bytes")[0])
    versions = directory.run(lambda tx: tx.one("SELECT count(*) FROM versions")[0])
    assert rows == versions  # the attempt that stopped stored nothing


@pytest.mark.parametrize("backends", PG, indirect=True)
def test_a_session_get_is_one_round_trip_remembered_or_after_a_change(app, sent):
    accounts = app.extensions["hatrac"].accounts
    accounts.add_user("alice", "pw")
    accounts.add_group("lab")
    web = app.test_client()
    assert (
        web.post("/authn/session", data={"username": "alice", "password": "pw"}).status_code == 201
    )
    namespace = {"Content-Type": "application/x-hatrac-namespace"}
    assert web.put("/hatrac/mine", headers=namespace).status_code == 201
    assert web.put("/hatrac/mine/obj", data=b"x" * 1024).status_code == 201
    for _ in range(2):  # prepares the statement; the second is answered from memory
        assert web.get("/hatrac/mine/obj").status_code == 200
    for change in (None, lambda: accounts.change_membership("lab", "alice", True), None):
        if change:
            change()  # the next GET computes the groups again, in the same statement
        sent.clear()
        assert web.get("/hatrac/mine/obj").status_code == 200
        assert len(sent) == 1, sent
    assert len(accounts.memo) == 1

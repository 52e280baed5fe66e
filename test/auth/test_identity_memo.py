"""The per-process memory of credentials (hatrac/model/credentials.py, IdentityMemo).

A warm memory must never let a request through that the database would
refuse: every change (logout, revocation, disable, password change,
membership) is seen by the very next request of another app instance that
remembered the credential. And the remembered client is the one a fresh
lookup builds.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

import hatrac
from hatrac.auth.accounts import client_of, secret_hash
from hatrac.errors import Unauthenticated
from hatrac.model import credentials
from hatrac.model.credentials import (
    DeferredClient,
    IdentityMemo,
    PendingLookup,
    deferring,
    memo_key,
)
from hatrac.model.directory import accounts as sql

NS = {"Content-Type": "application/x-hatrac-namespace"}


@pytest.fixture
def other_app(auth_config, auth_app):
    """A second app instance on the same database: another server process's memory."""
    application = hatrac.create_app(auth_config)
    application.testing = True
    yield application
    application.extensions["hatrac"].close()


def memo_of(app) -> IdentityMemo:
    return app.extensions["hatrac"].accounts.memo


def login(app, user: str = "alice", password: str = "pw") -> str:
    client = app.test_client()
    reply = client.post("/authn/session", data={"username": user, "password": password})
    assert reply.status_code == 201, reply.get_data(as_text=True)
    return client.get_cookie("webauthn").value


def get(app, path: str, cookie: str = None, headers: dict = None) -> int:
    client = app.test_client(use_cookies=False)
    headers = dict(headers or {})
    if cookie is not None:
        headers["Cookie"] = f"webauthn={cookie}"
    return client.get(path, headers=headers).status_code


@pytest.fixture
def lab_object(auth_app, accounts):
    """/hatrac/lab/obj, readable by members of g:outer only (lab is inside outer)."""
    accounts.add_user("alice", "pw", display_name="Alice")
    accounts.add_user("admin", "pw")
    for group in ("lab", "outer"):
        accounts.add_group(group)
    accounts.change_membership("lab", "alice", True)
    accounts.change_membership("outer", "g:lab", True)
    admin = auth_app.test_client()
    admin.post("/authn/session", data={"username": "admin", "password": "pw"})
    assert admin.put("/hatrac/lab", headers=NS).status_code == 201
    assert admin.put("/hatrac/lab/obj", data=b"secret").status_code == 201
    assert admin.put("/hatrac/lab;acl/subtree-read/g:outer").status_code == 204
    return "/hatrac/lab/obj"


def warm(apps, path: str, cookie: str = None, headers: dict = None, status: int = 200) -> None:
    for app in apps:
        for _ in range(2):
            assert get(app, path, cookie, headers) == status
        assert len(memo_of(app)) > 0


def test_membership_changes_reach_a_warm_memory_at_once(auth_app, other_app, accounts, lab_object):
    cookie = login(auth_app)
    warm([auth_app, other_app], lab_object, cookie)
    accounts.change_membership("outer", "g:lab", False)  # the nested group leaves
    assert get(other_app, lab_object, cookie) == 403
    assert get(auth_app, lab_object, cookie) == 403
    accounts.change_membership("outer", "alice", True)  # directly, now
    assert get(other_app, lab_object, cookie) == 200
    accounts.change_membership("outer", "alice", False)
    assert get(other_app, lab_object, cookie) == 403
    accounts.change_membership("outer", "g:lab", True)
    assert get(other_app, lab_object, cookie) == 200
    accounts.remove_group("lab")
    assert get(other_app, lab_object, cookie) == 403
    assert get(auth_app, lab_object, cookie) == 403


def test_logout_reaches_a_warm_memory_at_once(auth_app, other_app, accounts, lab_object):
    browser = auth_app.test_client()
    browser.post("/authn/session", data={"username": "alice", "password": "pw"})
    cookie = browser.get_cookie("webauthn").value
    warm([auth_app, other_app], lab_object, cookie)
    assert browser.delete("/authn/session").status_code == 204
    assert get(other_app, lab_object, cookie) == 401
    assert get(other_app, "/hatrac/", cookie) == 401
    key = memo_key("session", cookie)
    assert memo_of(other_app).get(key) is None  # a dead credential is forgotten


def test_disable_and_password_change_reach_a_warm_memory_at_once(
    auth_app, other_app, accounts, lab_object
):
    cookie = login(auth_app)
    warm([other_app], lab_object, cookie)
    accounts.set_disabled("alice", True)
    assert get(other_app, lab_object, cookie) == 401
    accounts.set_disabled("alice", False)
    assert get(other_app, lab_object, cookie) == 401  # disabling ended the session
    cookie = login(auth_app)
    warm([other_app], lab_object, cookie)
    accounts.set_password("alice", "new")
    assert get(other_app, lab_object, cookie) == 401
    assert get(other_app, lab_object, login(auth_app, password="new")) == 200
    accounts.remove_user("alice")
    assert get(other_app, lab_object, cookie) == 401


def test_token_revocation_reaches_a_warm_memory_at_once(auth_app, other_app, accounts, lab_object):
    token_id, token = accounts.issue_token("alice")
    bearer = {"Authorization": f"Bearer {token}"}
    warm([other_app], lab_object, headers=bearer)
    accounts.change_membership("lab", "alice", False)
    assert get(other_app, lab_object, headers=bearer) == 403
    accounts.change_membership("lab", "alice", True)
    assert get(other_app, lab_object, headers=bearer) == 200
    # disabling keeps the token's row: the user's, read again, refuses it
    accounts.set_disabled("alice", True)
    assert get(other_app, lab_object, headers=bearer) == 401
    accounts.set_disabled("alice", False)
    warm([other_app], lab_object, headers=bearer)
    assert accounts.revoke_token(token_id)
    assert get(other_app, lab_object, headers=bearer) == 401
    # a session id sent as a bearer value goes the same way
    cookie = login(auth_app)
    session_bearer = {"Authorization": f"Bearer {cookie}"}
    warm([other_app], lab_object, headers=session_bearer)
    assert auth_app.test_client(use_cookies=False).delete(
        "/authn/session", headers={"Cookie": f"webauthn={cookie}"}
    ).status_code in (200, 204)
    assert get(other_app, lab_object, headers=session_bearer) == 401


def _resolved_client(accounts, kind: str, secret: str):
    """The client of a deferred lookup carried by a name resolution, as a request gets it."""
    client = accounts.deferred(kind, secret, lambda: Unauthenticated("dead"))
    assert isinstance(client, DeferredClient)
    with deferring(client):
        accounts.directory.run(lambda tx: tx.resolve_current("/lab", ["/", "/lab"]))
    return client.lookup, client.resolved()


def test_the_remembered_client_is_the_one_a_fresh_lookup_builds(accounts, lab_object):
    session_id, _, _ = accounts.open_session(accounts.check_password("alice", "pw", None), None)
    _, token = accounts.issue_token("alice")

    def fresh(kind: str, secret: str):
        identity = accounts.session(secret) if kind == "session" else None
        identity = identity or accounts.token(secret) or accounts.session(secret)
        return client_of(identity)

    for kind, secret in (("session", session_id), ("bearer", token), ("bearer", session_id)):
        lookup, first = _resolved_client(accounts, kind, secret)
        assert lookup.held is None  # nothing remembered yet: the closure was computed
        assert first == fresh(kind, secret)
        assert first.attributes == {"g:lab", "g:outer"} and first.display_name == "Alice"
        lookup, second = _resolved_client(accounts, kind, secret)
        assert lookup.held is not None and second is first  # the remembered client
        assert second == fresh(kind, secret)

    # each kind of change: the client follows the database's at once
    changes = [
        lambda: accounts.change_membership("outer", "g:lab", False),
        lambda: accounts.directory.run(
            lambda tx: sql.set_display_name(tx, "alice", "Alice L."), write=True
        ),
        lambda: accounts.add_group("empty"),  # moves the generation, changes nothing
        lambda: accounts.extend_session(secret_hash(session_id)),
        lambda: accounts.change_membership("outer", "g:lab", True),
    ]
    for change in changes:
        change()
        for kind, secret in (("session", session_id), ("bearer", token)):
            lookup, client = _resolved_client(accounts, kind, secret)
            assert client == fresh(kind, secret)
            expected = accounts.session(secret) if kind == "session" else accounts.token(secret)
            if change is changes[3] and kind == "session":
                # an extension moves nothing: the expiry held (earlier) until it passes
                assert lookup.identity.expires < expected.expires
                expected = dataclasses.replace(expected, expires=lookup.identity.expires)
            assert lookup.identity == expected
    assert client.display_name == "Alice L." and client.attributes == {"g:lab", "g:outer"}


def test_every_identity_change_moves_the_generation_and_logins_do_not(accounts):
    def generation() -> int:
        return accounts.directory.run(
            lambda tx: tx.one("SELECT generation FROM auth_generation")[0]
        )

    changes = [
        lambda: accounts.add_user("bob", "pw"),
        lambda: accounts.add_group("team"),
        lambda: accounts.add_group("all"),
        lambda: accounts.change_membership("team", "bob", True),
        lambda: accounts.change_membership("all", "g:team", True),
        lambda: accounts.change_membership("all", "g:team", False),
        lambda: accounts.directory.run(
            lambda tx: sql.set_display_name(tx, "bob", "Bob"), write=True
        ),
        lambda: accounts.set_password("bob", "other"),
        lambda: accounts.set_disabled("bob", True),
        lambda: accounts.set_disabled("bob", False),
        lambda: accounts.change_membership("team", "bob", False),
        lambda: accounts.remove_group("team"),
        lambda: accounts.remove_user("bob"),
    ]
    for change in changes:
        before = generation()
        change()
        assert generation() > before
    accounts.add_user("carol", "pw")
    identity = accounts.check_password("carol", "pw", None)
    before = generation()
    # a login (its sweep deleting nothing), an extension, a new token: nothing
    # anyone can hold ends or shortens
    session_id, _, _ = accounts.open_session(identity, None)
    accounts.extend_session(secret_hash(session_id))
    token_id, _ = accounts.issue_token("carol")
    assert generation() == before
    # whatever ends or shortens a credential moves it
    ends = [
        lambda: accounts.revoke_token(token_id),
        lambda: accounts.end_session(secret_hash(session_id)),
        lambda: run_sql("DELETE FROM auth_tokens"),
        lambda: run_sql("UPDATE auth_sessions SET expires = expires - 1"),
        lambda: run_sql("UPDATE auth_sessions SET since = since + 1"),
        lambda: run_sql("DELETE FROM auth_sessions"),
    ]
    if accounts.directory.dialect == "postgres":
        ends += [
            lambda: run_sql("TRUNCATE auth_sessions"),
            lambda: run_sql("TRUNCATE auth_tokens"),
        ]

    def run_sql(statement: str) -> None:
        accounts.directory.run(lambda tx: tx.execute(statement), write=True)

    for end in ends:
        accounts.open_session(identity, None)
        accounts.issue_token("carol")
        before = generation()
        end()
        assert generation() > before
    # the sweep at a login moves it only when it deleted a session
    session_id, _, _ = accounts.open_session(identity, None)
    run_sql("UPDATE auth_sessions SET expires = 1")
    before = generation()
    accounts.open_session(identity, None)
    assert generation() == before + 1


def test_the_memory_is_bounded():
    memo = IdentityMemo(limit=3)
    for number in range(5):
        memo.put(f"s{number}", (number,))
    assert len(memo) == 3
    assert memo.get("s0") is None and memo.get("s1") is None and memo.get("s4") == (4,)
    memo.put("s4", (40,))  # a key already there takes no one's place
    assert len(memo) == 3 and memo.get("s2") == (2,)
    memo.forget("s2")
    assert memo.get("s2") is None and len(memo) == 2


def test_a_lookup_without_a_name_resolution_is_not_remembered(accounts, lab_object):
    session_id, _, _ = accounts.open_session(accounts.check_password("alice", "pw", None), None)
    lookup = PendingLookup(
        "session",
        session_id,
        accounts.directory,
        client_of,
        lambda: Unauthenticated("dead"),
        accounts.memo,
    )
    client = DeferredClient(lookup)
    assert client.identity == "alice"  # looked up on its own: no generation read
    assert len(accounts.memo) == 0


def test_the_statement_skips_the_credential_only_for_the_generation_it_was_given(
    accounts, lab_object
):
    session_id, _, expires = accounts.open_session(
        accounts.check_password("alice", "pw", None), None
    )
    key = secret_hash(session_id)
    directory = accounts.directory

    def row(known: int, kind: str = "session") -> tuple:
        statement, front = sql.with_identity(
            directory.dialect, kind, key, 0.0, "SELECT 1 AS x", known
        )
        return directory.run(lambda tx: tx.all(statement, front, prepared=True))[0]

    first = row(sql.UNKNOWN)
    generation, _, who = first[0].partition(":")
    generation, who = int(generation), json.loads(who)
    assert who[3:5] == ["alice", "Alice"] and first[1] == 1
    assert float(who[2]) == expires  # the exact time, on SQLite too
    assert sorted(who[5].split("\n")) == ["lab", "outer"]
    assert row(sql.UNKNOWN, "bearer") == first  # a session id as a bearer value
    assert row(generation) == (None, 1)  # skipped: the generation is the one given
    assert row(generation - 1) == first
    accounts.add_group("moves-the-generation")
    moved = row(generation)[0]
    assert moved.partition(":")[2] == first[0].partition(":")[2]
    assert int(moved.partition(":")[0]) > generation
    accounts.set_disabled("alice", True)  # ends the session too
    assert row(generation)[0].partition(":")[2] == ""


@pytest.fixture
def clock(monkeypatch):
    """Sets the time a request's credential lookup takes as now (the database's too)."""
    import types

    def set_to(moment: float) -> None:
        monkeypatch.setattr(credentials, "time", types.SimpleNamespace(time=lambda: moment))

    return set_to


def test_an_expired_session_is_refused_at_its_expiry_though_remembered(
    auth_app, other_app, accounts, lab_object, clock
):
    cookie = login(auth_app)
    warm([auth_app, other_app], lab_object, cookie)
    held = memo_of(other_app).get(memo_key("session", cookie))
    clock(held[1].expires - 0.001)
    assert get(other_app, lab_object, cookie) == 200
    clock(held[1].expires)  # nothing moved the generation; the memory is not trusted
    assert get(other_app, lab_object, cookie) == 401
    assert get(auth_app, lab_object, cookie) == 401


def test_an_extended_session_is_accepted_after_its_old_expiry(
    auth_app, other_app, accounts, lab_object, clock
):
    cookie = login(auth_app)
    warm([other_app], lab_object, cookie)
    key = memo_key("session", cookie)
    old = memo_of(other_app).get(key)
    assert accounts.extend_session(secret_hash(cookie))
    clock(old[1].expires)
    assert get(other_app, lab_object, cookie) == 200  # the row read, and its new expiry
    new = memo_of(other_app).get(key)
    assert new[1].expires > old[1].expires and new[0] == old[0]
    clock(new[1].expires)
    assert get(other_app, lab_object, cookie) == 401


def test_sessions_and_tokens_deleted_in_sql_are_refused_at_once(
    auth_app, other_app, accounts, lab_object
):
    def run_sql(statement: str, params: tuple = ()) -> None:
        accounts.directory.run(lambda tx: tx.execute(statement, params), write=True)

    statements = ["DELETE FROM auth_sessions"]
    if accounts.directory.dialect == "postgres":
        statements.append("TRUNCATE auth_sessions")
    for statement in statements:
        cookie = login(auth_app)
        session_bearer = {"Authorization": f"Bearer {cookie}"}
        warm([auth_app, other_app], lab_object, cookie)
        warm([other_app], lab_object, headers=session_bearer)
        run_sql(statement)  # an administrator, by hand
        assert get(other_app, lab_object, cookie) == 401
        assert get(auth_app, lab_object, cookie) == 401
        assert get(other_app, lab_object, headers=session_bearer) == 401
    token_id, token = accounts.issue_token("alice")
    bearer = {"Authorization": f"Bearer {token}"}
    warm([auth_app, other_app], lab_object, headers=bearer)
    run_sql("DELETE FROM auth_tokens WHERE id = %s", (token_id,))
    assert get(other_app, lab_object, headers=bearer) == 401
    assert get(auth_app, lab_object, headers=bearer) == 401
    _, token = accounts.issue_token("alice")
    bearer = {"Authorization": f"Bearer {token}"}
    warm([other_app], lab_object, headers=bearer)
    run_sql("UPDATE auth_tokens SET expires = 1")  # shortened by hand
    assert get(other_app, lab_object, headers=bearer) == 401


def test_groups_in_a_cycle_come_back_whole_with_the_name(accounts):
    accounts.add_user("alice", "pw")
    for group in ("a", "b", "c"):
        accounts.add_group(group)
    accounts.change_membership("b", "g:a", True)
    accounts.change_membership("c", "g:b", True)
    accounts.change_membership("a", "g:c", True)  # a cycle a -> b -> c -> a
    accounts.change_membership("b", "alice", True)
    session_id, _, _ = accounts.open_session(accounts.check_password("alice", "pw", None), None)
    for _ in range(2):  # computed, then remembered
        _, client = _resolved_client(accounts, "session", session_id)
        assert client.attributes == {"g:a", "g:b", "g:c"}


def test_a_resolution_that_finds_no_row_still_settles_the_credential(accounts, lab_object):
    session_id, _, _ = accounts.open_session(accounts.check_password("alice", "pw", None), None)
    for secret, alive in ((session_id, True), ("not-a-session", False)):
        client = accounts.deferred("session", secret, lambda: Unauthenticated("dead"))
        with deferring(client):
            if alive:  # a chain without the root: no row, so the lookup runs on its own
                accounts.directory.run(lambda tx: tx.resolve_current("/no", ["/no"]))
            else:
                with pytest.raises(Unauthenticated):
                    accounts.directory.run(lambda tx: tx.resolve_current("/no", ["/no"]))
        if alive:
            assert client.lookup.done and client.identity == "alice"
            assert client.lookup.held is None and len(accounts.memo) == 0


def test_a_remembered_credential_costs_no_sha256(accounts, lab_object, monkeypatch):
    session_id, _, _ = accounts.open_session(accounts.check_password("alice", "pw", None), None)
    lookup, first = _resolved_client(accounts, "session", session_id)
    assert lookup.key == secret_hash(session_id)  # asked: the database's key
    hashed = []
    monkeypatch.setattr(credentials, "secret_hash", lambda value: hashed.append(value) or "")
    lookup, second = _resolved_client(accounts, "session", session_id)
    assert second is first and lookup.held is not None and hashed == []
    accounts.add_group("moves-the-generation")  # the row is read again, with the key held
    lookup, third = _resolved_client(accounts, "session", session_id)
    assert third == first and third is not first and hashed == []
    monkeypatch.undo()
    assert lookup.key == secret_hash(session_id)

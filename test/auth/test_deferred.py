"""A session or API token costs no round trip of its own: it travels with the name lookup.

The statements a request sends are counted at the directory's one entry
point (``Transaction.execute``) and its transactions; an authenticated GET
or PUT must send exactly as many as the same anonymous request, and still
refuse a dead credential with 401 at once, whatever the resource.
"""

from __future__ import annotations

import pytest

from hatrac.model.directory import sql

NS = {"Content-Type": "application/x-hatrac-namespace"}


@pytest.fixture
def counted(monkeypatch):
    """counts: statements and transactions sent to the database since the last reset."""
    counts = {"statements": 0, "transactions": 0}
    execute, transaction = sql.Transaction.execute, sql.Directory._transaction

    def counting_execute(self, *args, **kwargs):
        counts["statements"] += 1
        return execute(self, *args, **kwargs)

    def counting_transaction(self, *args, **kwargs):
        counts["transactions"] += 1
        return transaction(self, *args, **kwargs)

    monkeypatch.setattr(sql.Transaction, "execute", counting_execute)
    monkeypatch.setattr(sql.Directory, "_transaction", counting_transaction)
    return counts


def measure(counts, request) -> tuple:
    counts.update(statements=0, transactions=0)
    reply = request()
    return reply.status_code, counts["statements"], counts["transactions"]


def test_session_and_token_requests_send_what_anonymous_ones_send(auth_app, accounts, counted):
    accounts.add_user("alice", "pw")
    accounts.add_group("lab")
    accounts.change_membership("lab", "alice", True)
    _, token = accounts.issue_token("alice")
    anonymous = auth_app.test_client()
    alice = auth_app.test_client()
    assert (
        alice.post("/authn/session", data={"username": "alice", "password": "pw"}).status_code
        == 201
    )
    bearer = {"Authorization": f"Bearer {token}"}
    ns = "/hatrac/deferred"
    assert alice.put(ns, headers=NS).status_code == 201
    # readable by the group only: the groups come back with the name lookup
    assert alice.put(ns + ";acl/subtree-read/g:lab").status_code == 204
    assert alice.put(ns + ";acl/subtree-create/*").status_code == 204
    assert alice.put(ns + "/obj", data=b"hello").status_code == 201

    get = measure(counted, lambda: anonymous.get(ns + "/obj"))
    assert get[0] == 401  # the group's object is not for anonymous clients...
    assert measure(counted, lambda: alice.get(ns + "/obj")) == (200, *get[1:])
    assert measure(counted, lambda: anonymous.get(ns + "/obj", headers=bearer)) == (200, *get[1:])
    reply = alice.get(ns + "/obj")
    assert reply.data == b"hello"

    put = measure(counted, lambda: anonymous.put(ns + "/a", data=b"1"))
    assert put[0] == 201
    assert measure(counted, lambda: alice.put(ns + "/b", data=b"1")) == (201, *put[1:])
    reply = anonymous.put(ns + "/c", data=b"1", headers=bearer)
    assert reply.status_code == 201
    # the owner recorded is the credential's user, looked up with the name
    assert alice.get(ns + "/b;acl/owner").get_json() == ["alice"]
    assert alice.get(ns + "/c;acl/owner").get_json() == ["alice"]


def test_a_dead_credential_is_refused_at_once_on_any_resource(auth_app, accounts):
    accounts.add_user("alice", "pw")
    token_id, token = accounts.issue_token("alice")
    alice = auth_app.test_client()
    alice.post("/authn/session", data={"username": "alice", "password": "pw"})
    ns = "/hatrac/dead"
    assert alice.put(ns, headers=NS).status_code == 201
    assert alice.get(ns + "/missing").status_code == 404
    assert alice.delete("/authn/session").status_code == 204
    stale = alice.get_cookie("webauthn")
    assert stale is None  # logout clears it; replay the old value by hand
    other = auth_app.test_client()
    other.set_cookie("webauthn", "not-a-live-session")
    for path in (ns, ns + "/missing", "/hatrac/nowhere/at/all", ns + ";acl"):
        assert other.get(path).status_code == 401, path
    assert other.put(ns + "/x", data=b"1").status_code == 401
    assert other.get(ns + "/x").status_code == 401
    again = auth_app.test_client()
    again.post("/authn/session", data={"username": "alice", "password": "pw"})
    assert again.get(ns + "/x").status_code == 404  # nothing was stored

    bearer = {"Authorization": f"Bearer {token}"}
    assert auth_app.test_client().get(ns, headers=bearer).status_code == 200
    assert accounts.revoke_token(token_id)
    assert auth_app.test_client().get(ns, headers=bearer).status_code == 401
    assert auth_app.test_client().get(ns + "/missing", headers=bearer).status_code == 401


def test_logout_takes_effect_on_the_next_request(auth_app, accounts):
    accounts.add_user("alice", "pw")
    alice = auth_app.test_client()
    alice.post("/authn/session", data={"username": "alice", "password": "pw"})
    cookie = alice.get_cookie("webauthn").value
    ns = "/hatrac/logout_at_once"
    assert alice.put(ns, headers=NS).status_code == 201
    replay = auth_app.test_client()
    replay.set_cookie("webauthn", cookie)
    assert replay.get(ns).status_code == 200
    assert alice.delete("/authn/session").status_code == 204
    assert replay.get(ns).status_code == 401
    assert replay.put(ns + "/o", data=b"1").status_code == 401

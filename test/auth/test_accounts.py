"""Accounts on both databases: nested groups with cycles, sessions, tokens, limits."""

from __future__ import annotations

import time

import pytest

from hatrac.auth.accounts import PasswordRejected, client_of, secret_hash
from hatrac.errors import Conflict, NotFound, TooManyRequests
from hatrac.model.directory import accounts as sql


def test_group_closure_follows_nesting_and_survives_cycles(accounts):
    accounts.add_user("alice", "pw")
    accounts.add_user("bob", "pw")
    for group in ("a", "b", "c", "d", "lonely"):
        accounts.add_group(group)
    accounts.change_membership("a", "alice", True)  # alice in a
    accounts.change_membership("b", "g:a", True)  # a in b
    accounts.change_membership("c", "b", True)  # b in c (plain name: no such user)
    accounts.change_membership("a", "g:c", True)  # c in a: a cycle a -> b -> c -> a
    accounts.change_membership("d", "bob", True)
    assert accounts.groups_of("alice") == ["a", "b", "c"]
    assert accounts.groups_of("bob") == ["d"]
    identity = accounts.directory.run(lambda tx: sql.user_identity(tx, "alice"))
    assert client_of(identity).roles == {"*", "alice", "g:a", "g:b", "g:c"}
    # a self-loop is harmless too
    accounts.change_membership("d", "g:d", True)
    assert accounts.groups_of("bob") == ["d"]
    accounts.change_membership("b", "g:a", False)
    assert accounts.groups_of("alice") == ["a"]
    listed = {name: (users, groups) for name, users, groups in accounts.groups()}
    assert listed["a"] == (["alice"], ["c"])
    assert listed["lonely"] == ([], [])


def test_membership_errors(accounts):
    accounts.add_user("alice", "pw")
    accounts.add_group("lab")
    with pytest.raises(NotFound):
        accounts.change_membership("nosuch", "alice", True)
    with pytest.raises(NotFound):
        accounts.change_membership("lab", "nobody", True)
    with pytest.raises(Conflict):
        accounts.add_group("lab")
    with pytest.raises(Conflict):
        accounts.add_user("alice", "pw")
    assert accounts.change_membership("lab", "alice", True)
    assert not accounts.change_membership("lab", "alice", True)  # already a member
    accounts.remove_group("lab")
    assert accounts.groups_of("alice") == []


def test_password_check_disable_and_change(accounts):
    accounts.add_user("alice", "first")
    assert accounts.check_password("alice", "first", "10.0.0.1").name == "alice"
    with pytest.raises(PasswordRejected):
        accounts.check_password("alice", "wrong", "10.0.0.1")
    with pytest.raises(PasswordRejected):
        accounts.check_password("nobody", "first", "10.0.0.1")
    session_id, _, _ = accounts.open_session(accounts.check_password("alice", "first", "x"), "x")
    assert accounts.session(session_id).name == "alice"
    accounts.set_password("alice", "second")
    assert accounts.session(session_id) is None  # a password change ends sessions
    with pytest.raises(PasswordRejected):
        accounts.check_password("alice", "first", "10.0.0.1")
    identity = accounts.check_password("alice", "second", "10.0.0.1")
    session_id, _, _ = accounts.open_session(identity, "x")
    accounts.set_disabled("alice", True)
    assert accounts.session(session_id) is None
    with pytest.raises(PasswordRejected, match="disabled"):
        accounts.check_password("alice", "second", "10.0.0.1")
    accounts.set_disabled("alice", False)
    assert accounts.check_password("alice", "second", "10.0.0.1")
    accounts.remove_user("alice")
    with pytest.raises(NotFound):
        accounts.remove_user("alice")


def test_sessions_expire_extend_and_end(accounts):
    accounts.add_user("alice", "pw")
    identity = accounts.check_password("alice", "pw", None)
    session_id, since, expires = accounts.open_session(identity, None)
    assert expires - since == accounts.session_expiry
    assert accounts.session(session_id).expires == expires
    assert accounts.session(session_id + "x") is None
    assert accounts.session("") is None
    key = secret_hash(session_id)
    new_expiry = accounts.extend_session(key)
    assert new_expiry >= expires
    # the database never holds the session id itself
    rows = accounts.directory.run(lambda tx: tx.all("SELECT id_hash FROM auth_sessions"))
    assert rows == [(key,)]
    accounts.directory.run(
        lambda tx: tx.execute("UPDATE auth_sessions SET expires = %s", (time.time() - 1,)),
        write=True,
    )
    accounts.cache.clear()  # a direct database edit notifies nobody
    assert accounts.session(session_id) is None
    assert accounts.extend_session(key) is None
    assert not accounts.end_session(secret_hash("nothing"))


def test_tokens(accounts):
    accounts.add_user("alice", "pw")
    token_id, value = accounts.issue_token("alice", description="ci")
    assert value.startswith("hatrac_") and len(value) > 40
    assert accounts.token(value).name == "alice"
    assert accounts.token(value[:-1]) is None
    short_id, short = accounts.issue_token("alice", expires_in=1)
    listed = accounts.tokens("alice")
    assert [t.id for t in listed] == [token_id, short_id]
    assert listed[0].expires is None and listed[1].expires is not None
    assert accounts.revoke_token(token_id)
    assert not accounts.revoke_token(token_id)
    assert accounts.token(value) is None
    time.sleep(1.1)
    assert accounts.token(short) is None
    with pytest.raises(NotFound):
        accounts.issue_token("nobody")


def test_failures_are_limited_per_account_and_per_address(accounts):
    accounts.add_user("alice", "pw")
    for _ in range(accounts.max_account_failures):
        with pytest.raises(PasswordRejected):
            accounts.check_password("alice", "wrong", "10.0.0.1")
    # even the right password is refused now, from any address
    with pytest.raises(TooManyRequests):
        accounts.check_password("alice", "pw", "10.0.0.2")
    # an unknown name is limited the same way (no hint about which names exist)
    for _ in range(accounts.max_account_failures):
        with pytest.raises(PasswordRejected):
            accounts.check_password("ghost", "wrong", "10.0.0.3")
    with pytest.raises(TooManyRequests):
        accounts.check_password("ghost", "wrong", "10.0.0.4")
    # per address: many names from one address
    accounts.add_user("bob", "pw")
    remaining = accounts.max_address_failures
    for number in range(remaining):
        try:
            accounts.check_password(f"user{number}", "wrong", "10.9.9.9")
        except PasswordRejected:
            pass
    with pytest.raises(TooManyRequests):
        accounts.check_password("bob", "pw", "10.9.9.9")
    assert accounts.check_password("bob", "pw", "10.0.0.5").name == "bob"


def test_unknown_users_take_as_long_as_wrong_passwords(accounts):
    accounts.rounds = 100000  # make the hash dominate the database round trips
    accounts.max_account_failures = accounts.max_address_failures = 1000
    accounts.add_user("alice", "pw")

    def timed(name: str) -> float:
        start = time.perf_counter()
        with pytest.raises(PasswordRejected):
            accounts.check_password(name, "wrong password", "10.1.1.1")
        return time.perf_counter() - start

    # interleaved, and the fastest of several runs: a loaded machine only adds time
    known, unknown = [], []
    for number in range(7):
        known.append(timed("alice"))
        unknown.append(timed(f"ghost{number}"))
    assert 0.5 < min(unknown) / min(known) < 2.0, (known, unknown)

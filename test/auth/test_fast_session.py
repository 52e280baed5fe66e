"""Session-cookie reads on the fast path (hatrac/rest/fast.py): answered as by Flask,
the session looked up with the name, and a dead session still refused at once."""

from __future__ import annotations

from fastpath import both, same

NS = {"Content-Type": "application/x-hatrac-namespace"}


def test_session_reads_take_the_fast_path_and_logout_still_refuses(auth_app, accounts):
    accounts.add_user("alice", "pw")
    alice = auth_app.test_client()
    assert (
        alice.post("/authn/session", data={"username": "alice", "password": "pw"}).status_code
        == 201
    )
    cookie = {"Cookie": f"webauthn={alice.get_cookie('webauthn').value}", "X-Request-Id": "s"}
    assert alice.put("/hatrac/mine", headers=NS).status_code == 201
    assert alice.put("/hatrac/mine/obj", data=b"secret").status_code == 201
    through, alone, fast = both(auth_app, "GET", "/hatrac/mine/obj", cookie)
    assert fast and through.status_code == 200 and through.get_data() == b"secret"
    same(through, alone)
    anonymous = both(auth_app, "GET", "/hatrac/mine/obj", {"X-Request-Id": "s"})
    assert anonymous[0].status_code == 401 and not anonymous[2]  # the owner's only
    same(*anonymous[:2])
    assert alice.delete("/authn/session").status_code == 204
    through, alone, fast = both(auth_app, "GET", "/hatrac/mine/obj", cookie)
    assert not fast and through.status_code == 401
    same(through, alone)

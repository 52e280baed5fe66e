"""Session-cookie reads and small PUTs on the fast paths (hatrac/rest/fast.py,
fast_put.py): answered as by Flask, the session looked up with the name, and a
dead session still refused at once."""

from __future__ import annotations

import json
import logging

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
    # a small PUT with the cookie: stored by the fast path (rest/fast_put.py), as by Flask
    through, alone, fast = both(auth_app, "PUT", "/hatrac/mine/obj", cookie, data=b"v2")
    assert fast and through.status_code == alone.status_code == 201
    assert through.headers["Location"] != alone.headers["Location"]
    assert alice.get(through.headers["Location"]).get_data() == b"v2"
    assert alice.delete("/authn/session").status_code == 204
    through, alone, fast = both(auth_app, "GET", "/hatrac/mine/obj", cookie)
    assert not fast and through.status_code == 401
    same(through, alone)
    # the PUT of a logged-out session: refused at once, by Flask, nothing stored
    through, alone, fast = both(auth_app, "PUT", "/hatrac/mine/obj", cookie, data=b"v3")
    assert not fast and through.status_code == 401
    same(through, alone)


def test_a_refused_credential_is_audited_once_when_the_fast_path_hands_over(auth_app, caplog):
    # several cookie values are looked up before the name (not deferred); none is
    # valid, so the fast path meets the 401 and hands the request to Flask, which
    # must refuse it with the same error rather than ask (and audit) again
    cookie = {"Cookie": "webauthn=nope1; webauthn=nope2"}
    for method, body in (("GET", None), ("PUT", b"x")):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hatrac.audit"):
            reply = auth_app.test_client(use_cookies=False).open(
                "/hatrac/anything", method=method, headers=cookie, data=body
            )
        assert reply.status_code == 401
        failures = [
            json.loads(record.getMessage())
            for record in caplog.records
            if record.name == "hatrac.audit" and "authn.failure" in record.getMessage()
        ]
        assert [event["provider"] for event in failures] == ["session"], method

"""Every provider over a real gunicorn server, with clients as users run them.

Sessions are driven exactly as the DERIVA clients do: a ``requests`` session
POSTs the form ``username``/``password`` to ``BASE/authn/session`` and then
carries the ``webauthn`` cookie on ``/hatrac`` requests.
"""

from __future__ import annotations

import base64
import datetime
import json
import time

import pytest
import requests

from hatrac.auth.accounts import MAX_TOKEN_LIFETIME

NS = {"Content-Type": "application/x-hatrac-namespace"}


def login(base: str, username: str, password: str) -> requests.Session:
    """What DerivaBinding does with {"username": U, "password": P}."""
    session = requests.Session()
    reply = session.post(base + "/authn/session", data={"username": username, "password": password})
    assert reply.status_code == 201, reply.text
    return session


def test_session_login_use_extend_logout(server, accounts):
    accounts.add_user("alice", "s3cret", display_name="Alice Liddell")
    accounts.add_group("lab")
    accounts.change_membership("lab", "alice", True)
    base = server.url
    browser = requests.Session()
    reply = browser.post(base + "/authn/session", data={"username": "alice", "password": "s3cret"})
    assert reply.status_code == 201, reply.text
    cookie_header = reply.headers["Set-Cookie"]
    assert cookie_header.startswith("webauthn=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie_header.split(";")}
    assert {"httponly", "path", "samesite"} <= attributes
    assert "domain" not in attributes and "secure" not in attributes
    assert "Path=/" in cookie_header and "SameSite=Lax" in cookie_header
    session = reply.json()
    assert session["client"]["id"] == "alice"
    assert session["client"]["display_name"] == "Alice Liddell"
    assert session["client"]["identities"] == ["alice"]
    assert {a["id"] for a in session["attributes"]} == {"alice", "g:lab"}
    assert 0 < session["seconds_remaining"] <= 28800
    assert session["since"].endswith("+00:00") and session["expires"].endswith("+00:00")

    reply = browser.get(base + "/authn/session")
    assert reply.status_code == 200 and reply.json()["client"]["id"] == "alice"
    # the cookie works on /hatrac: create a namespace and an object, owned by alice
    ns = f"{base}/hatrac/alice_{time.time_ns()}"
    assert browser.put(ns, headers=NS).status_code == 201
    assert browser.put(ns + "/obj", data=b"hello").status_code == 201
    assert browser.get(ns + "/obj").content == b"hello"
    assert browser.get(ns + ";acl/owner").json() == ["alice"]
    # anonymous may not read alice's ACLs
    assert requests.get(ns + ";acl/owner").status_code == 401

    stolen = browser.cookies.get("webauthn")
    reply = browser.put(base + "/authn/session")
    assert reply.status_code == 200 and reply.json()["client"]["id"] == "alice"
    reply = browser.delete(base + "/authn/session")
    assert reply.status_code == 204
    assert "webauthn" not in browser.cookies
    assert browser.get(base + "/authn/session").status_code == 404
    # the old cookie is dead: 401 on the store, not a silent anonymous
    reply = requests.put(ns + "/obj2", data=b"x", cookies={"webauthn": stolen})
    assert reply.status_code == 401
    reply = requests.get(ns + "/obj", cookies={"webauthn": stolen})
    assert reply.status_code == 401


def test_logout_is_effective_at_once_on_another_server(
    server, accounts, start_server, auth_config, directory_backend
):
    if directory_backend != "postgres":
        pytest.skip("two servers share one database only on PostgreSQL")
    other = start_server(auth_config)
    accounts.add_user("alice", "pw")
    first = login(server.url, "alice", "pw")
    cookie = first.cookies.get("webauthn")
    ns = f"/hatrac/shared_{time.time_ns()}"
    assert first.put(server.url + ns, headers=NS).status_code == 201
    reply = requests.put(other.url + ns + "/o", data=b"1", cookies={"webauthn": cookie})
    assert reply.status_code == 201, reply.text
    # an object of admin's that a group of alice's may read: each worker remembers
    # her groups, and must see them change at the very next request
    accounts.add_user("admin", "pw")
    accounts.add_group("lab")
    accounts.change_membership("lab", "alice", True)
    admin = login(server.url, "admin", "pw")
    lab = f"/hatrac/lab_{time.time_ns()}"
    assert admin.put(server.url + lab, headers=NS).status_code == 201
    assert admin.put(server.url + lab + "/o", data=b"1").status_code == 201
    assert admin.put(server.url + lab + ";acl/subtree-read/g:lab").status_code == 204
    for member, expected in ((None, 200), (False, 403), (True, 200)):
        if member is not None:
            accounts.change_membership("lab", "alice", member)
        for _ in range(20):  # every worker of the second server, warm after the first
            reply = requests.get(other.url + lab + "/o", cookies={"webauthn": cookie})
            assert reply.status_code == expected
    assert first.delete(server.url + "/authn/session").status_code == 204
    for _ in range(20):
        reply = requests.put(other.url + ns + "/o", data=b"2", cookies={"webauthn": cookie})
        assert reply.status_code == 401
        reply = requests.get(other.url + lab + "/o", cookies={"webauthn": cookie})
        assert reply.status_code == 401


def test_session_survives_a_restart(server, accounts, start_server, auth_config):
    accounts.add_user("alice", "pw")
    session = login(server.url, "alice", "pw")
    cookie = session.cookies.get("webauthn")
    server.stop()
    again = start_server(auth_config)
    reply = requests.get(again.url + "/authn/session", cookies={"webauthn": cookie})
    assert reply.status_code == 200 and reply.json()["client"]["id"] == "alice"


def test_basic(server, accounts):
    accounts.add_user("carol", "pw c")
    ns = f"{server.url}/hatrac/carol_{time.time_ns()}"
    reply = requests.put(ns, headers=NS, auth=("carol", "pw c"))
    assert reply.status_code == 201, reply.text
    for _ in range(5):  # the cached credential
        assert requests.get(ns + ";acl/owner", auth=("carol", "pw c")).json() == ["carol"]
    reply = requests.get(server.url + "/authn/session", auth=("carol", "pw c"))
    assert reply.status_code == 200 and reply.json()["authentication_method"] == "basic"
    assert requests.get(ns, auth=("carol", "wrong")).status_code == 401
    assert requests.get(ns, auth=("nobody", "pw c")).status_code == 401


def test_api_tokens_and_sessions_as_bearer(server, accounts):
    accounts.add_user("dave", "pw")
    token_id, token = accounts.issue_token("dave")
    bearer = {"Authorization": f"Bearer {token}"}
    ns = f"{server.url}/hatrac/dave_{time.time_ns()}"
    assert requests.put(ns, headers={**NS, **bearer}).status_code == 201
    reply = requests.get(server.url + "/authn/session", headers=bearer)
    assert reply.status_code == 200 and reply.json()["client"]["id"] == "dave"
    # a bearer token wins over a cookie (as DERIVA expects)
    reply = requests.get(ns + ";acl/owner", headers=bearer, cookies={"webauthn": "junk"})
    assert reply.status_code == 200
    # the session id works as a bearer token too (credenza clients)
    session_id = login(server.url, "dave", "pw").cookies.get("webauthn")
    reply = requests.put(
        server.url + "/authn/session", headers={"Authorization": f"Bearer {session_id}"}
    )
    assert reply.status_code == 200 and reply.json()["authentication_method"] == "session"
    accounts.revoke_token(token_id)
    assert requests.get(ns, headers=bearer).status_code == 401
    expiring_id, expiring = accounts.issue_token("dave", expires_in=1)
    time.sleep(1.2)
    assert requests.get(ns, headers={"Authorization": f"Bearer {expiring}"}).status_code == 401


def _basic(text: bytes) -> str:
    return "Basic " + base64.b64encode(text).decode()


def test_bad_input_is_401_never_500(server, accounts):
    accounts.add_user("erin", "pw")
    url = server.url
    ns = f"{url}/hatrac/erin_{time.time_ns()}"
    assert requests.put(ns, headers=NS, auth=("erin", "pw")).status_code == 201
    answers = {}

    def check(label, reply, expected=(401,)):
        answers[label] = reply.status_code
        assert reply.status_code in expected, (label, reply.status_code, reply.text)

    session_url = url + "/authn/session"
    check("wrong password", requests.post(session_url, data={"username": "erin", "password": "x"}))
    check("unknown user", requests.post(session_url, data={"username": "zed", "password": "pw"}))
    check("empty password", requests.post(session_url, data={"username": "erin", "password": ""}))
    check("empty user", requests.post(session_url, data={"username": "", "password": "pw"}))
    check(
        "1 MB password",
        requests.post(session_url, data={"username": "erin", "password": "p" * 2**20}),
        (401, 413),
    )
    check(
        "10 MB password",
        requests.post(session_url, data={"username": "erin", "password": "p" * 10 * 2**20}),
        (401, 413),
    )
    check(
        "2 KB password",
        requests.post(session_url, data={"username": "erin", "password": "p" * 2048}),
    )
    check("no fields", requests.post(session_url, data={"user": "erin"}), (400,))
    check("binary body", requests.post(session_url, data=b"\xff\xfe\x00"), (400,))
    check("json login", requests.post(session_url, json={"username": "erin", "password": "x"}))
    for header in (
        "Basic",
        "Basic !!!notbase64",
        _basic(b"no colon"),
        _basic(b":nouser"),
        _basic(b"\xff\xfe:bad utf8"),
        "Bearer",
        "Bearer ",
        "Bearer a b c",
        "Bearer x.y.z",
        "Bearer " + "t" * 8000,
        "Negotiate abc",
        "garbage",
        "Digest username=erin",
    ):
        check(f"Authorization {header[:30]}", requests.get(ns, headers={"Authorization": header}))
    for cookie in ("", "x", "a" * 300, "tampered" + "A" * 43, "\u00e9t\u00e9", '"quoted"'):
        check(
            f"cookie {cookie[:20]!r}",
            requests.get(ns, headers={"Cookie": f"webauthn={cookie}"}),
            (401, 200) if cookie == "" else (401,),
        )
    check(
        "two cookies, one good",
        requests.get(
            ns + ";acl",
            headers={
                "Cookie": "webauthn=junk; webauthn="
                + login(url, "erin", "pw").cookies.get("webauthn")
            },
        ),
        (200,),
    )
    assert all(status < 500 for status in answers.values()), answers


def test_rate_limit_over_http(server, accounts):
    accounts.add_user("frank", "pw")
    url = server.url + "/authn/session"
    for _ in range(5):
        assert requests.post(url, data={"username": "frank", "password": "no"}).status_code == 401
    reply = requests.post(url, data={"username": "frank", "password": "pw"})
    assert reply.status_code == 429 and int(reply.headers["Retry-After"]) > 0
    # Basic counts the same failures
    assert requests.get(server.url + "/hatrac/", auth=("frank", "pw")).status_code == 429


def test_csrf_origin_check_for_cookie_clients(server, accounts):
    accounts.add_user("gina", "pw")
    browser = login(server.url, "gina", "pw")
    host = server.url.split("://")[1]
    ns = f"{server.url}/hatrac/gina_{time.time_ns()}"
    evil = {"Origin": "https://evil.example"}
    assert browser.put(ns, headers={**NS, **evil}).status_code == 403
    assert (
        browser.put(ns, headers={**NS, "Referer": "https://evil.example/page"}).status_code == 403
    )
    assert browser.put(ns, headers={**NS, "Origin": "null"}).status_code == 403
    assert browser.put(ns, headers={**NS, "Origin": f"http://{host}"}).status_code == 201
    assert browser.put(ns + "/a", data=b"1").status_code == 201  # no Origin: scripts, DERIVA
    assert browser.get(ns + "/a", headers=evil).status_code == 200  # safe method
    assert browser.delete(ns + "/a", headers=evil).status_code == 403
    assert browser.delete(server.url + "/authn/session", headers=evil).status_code == 403
    reply = requests.post(
        server.url + "/authn/session", data={"username": "gina", "password": "pw"}, headers=evil
    )
    assert reply.status_code == 403
    # a bearer token is not sent by browsers on their own: no Origin check
    _, token = accounts.issue_token("gina")
    reply = requests.delete(ns + "/a", headers={**evil, "Authorization": f"Bearer {token}"})
    assert reply.status_code == 204


def test_session_json_shape_for_deriva(server, accounts):
    accounts.add_user("hana", "pw")
    session = login(server.url, "hana", "pw")
    body = session.get(server.url + "/authn/session").json()
    assert set(body) >= {"client", "attributes", "since", "expires", "seconds_remaining"}
    assert body["vary_headers"] == ["cookie"]
    assert json.loads(json.dumps(body)) == body
    assert requests.get(server.url + "/authn/session").status_code == 404


def test_session_cache_is_cleared_everywhere_by_notify(
    start_server, make_config, directory_backend
):
    if directory_backend != "postgres":
        pytest.skip("the session cache exists on PostgreSQL only")
    from hatrac.auth.accounts import Accounts
    from hatrac.config import load_config
    from hatrac.model.directory import open_directory

    config = make_config(password_hash_rounds=1000, session_cache_secs=60)
    directory = open_directory(config["database_dsn"])
    directory.initialize(config["root_acls"])
    mine = Accounts(directory, load_config(config))
    mine.add_user("ivy", "pw")
    first, second = start_server(config), start_server(config)
    cookie = login(first.url, "ivy", "pw").cookies.get("webauthn")
    for _ in range(30):  # fill the caches of every worker
        reply = requests.get(second.url + "/authn/session", cookies={"webauthn": cookie})
        assert reply.status_code == 200
    assert requests.delete(first.url + "/authn/session", cookies={"webauthn": cookie}).ok
    deadline = time.monotonic() + 10  # far below the 60 s the cache would keep it
    while time.monotonic() < deadline:
        statuses = {
            requests.get(second.url + "/hatrac/", cookies={"webauthn": cookie}).status_code
            for _ in range(8)
        }
        if statuses == {401}:
            break
        time.sleep(0.05)
    assert statuses == {401}
    directory.close()


def test_token_lifetimes_out_of_range_are_400(server, accounts):
    """expires_in must be a whole number of seconds from 1 to the maximum; 10**23
    used to be stored and then fail to render (a 500, with a token made)."""
    accounts.add_user("gus", "pw")
    url = server.url + "/authn/token"
    for value in (10**23, 10**400, 2**63, -1, 0, 1.5, 1e23, "3600", True, [1], {"s": 1}):
        reply = requests.post(url, json={"expires_in": value}, auth=("gus", "pw"))
        assert reply.status_code == 400, (value, reply.status_code, reply.text)
        assert "expires_in must be" in reply.text, (value, reply.text)
    listed = requests.get(url, auth=("gus", "pw")).json()["tokens"]
    assert listed == []  # nothing was made
    # the longest lifetime there is, and none at all (never expires), are fine
    longest = requests.post(url, json={"expires_in": MAX_TOKEN_LIFETIME}, auth=("gus", "pw"))
    assert longest.status_code == 201, longest.text
    expires = datetime.datetime.fromisoformat(longest.json()["expires"]).timestamp()
    assert abs(expires - (time.time() + MAX_TOKEN_LIFETIME)) < 60
    too_long = requests.post(url, json={"expires_in": MAX_TOKEN_LIFETIME + 1}, auth=("gus", "pw"))
    assert too_long.status_code == 400 and str(MAX_TOKEN_LIFETIME) in too_long.text
    forever = requests.post(url, json={"expires_in": None}, auth=("gus", "pw"))
    assert forever.status_code == 201 and forever.json()["expires"] is None

"""In-process checks: trusted front-end, audit lines, session JSON, CLI one-liners."""

from __future__ import annotations

import io
import json
import logging

import pytest

from hatrac.cli import main


def audit_events(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "hatrac.audit"]


def test_trusted_front_end(auth_app):
    client = auth_app.test_client()
    environ = {"REMOTE_USER": "https://idp.example/u7", "HATRAC_GROUPS": "lab;ops"}
    reply = client.get("/authn/session", environ_base=environ)
    assert reply.status_code == 200
    body = reply.get_json()
    assert body["client"]["id"] == "https://idp.example/u7"
    assert {a["id"] for a in body["attributes"]} == {"https://idp.example/u7", "lab", "ops"}
    assert body["authentication_method"] == "trusted"
    reply = client.put(
        "/hatrac/trusted_ns",
        headers={"Content-Type": "application/x-hatrac-namespace"},
        environ_base=environ,
    )
    assert reply.status_code == 201
    reply = client.get("/hatrac/trusted_ns;acl/owner", environ_base=environ)
    assert reply.get_json() == ["https://idp.example/u7"]
    # without REMOTE_USER the request is anonymous
    assert client.get("/hatrac/trusted_ns;acl/owner").status_code == 401


def test_audit_lines(auth_app, accounts, caplog):
    accounts.add_user("alice", "right")
    accounts.add_user("bob", "pw")
    client = auth_app.test_client()
    with caplog.at_level(logging.INFO, logger="hatrac.audit"):
        reply = client.post("/authn/session", data={"username": "alice", "password": "wrong-pw"})
        assert reply.status_code == 401
        reply = client.post("/authn/session", data={"username": "alice", "password": "right"})
        assert reply.status_code == 201
        ns = "/hatrac/audited"
        ns_headers = {"Content-Type": "application/x-hatrac-namespace"}
        assert client.put(ns, headers=ns_headers).status_code == 201
        assert client.put(ns + ";acl/read/g:lab").status_code == 204
        other = auth_app.test_client()
        other.post("/authn/session", data={"username": "bob", "password": "pw"})
        assert other.get(ns + ";acl").status_code == 403
        assert auth_app.test_client().get(ns + ";acl").status_code == 401
        assert client.delete("/authn/session").status_code == 204
    events = audit_events(caplog)
    kinds = [e["event"] for e in events]
    failure = next(e for e in events if e["event"] == "login.failure")
    assert failure["user"] == "alice" and failure["client_address"] == "127.0.0.1"
    assert "login.success" in kinds and "session.create" in kinds and "session.end" in kinds
    denied = [e for e in events if e["event"] == "access.denied"]
    assert {(e["status"], e["resource"], e["user"]) for e in denied} >= {
        (403, "/hatrac/audited;acl", "bob"),
        (401, "/hatrac/audited;acl", None),
    }
    change = next(e for e in events if e["event"] == "acl.change")
    assert change["resource"] == "/audited" and change["access"] == "read"
    assert change["roles"] == ["g:lab"] and change["user"] == "alice"
    text = caplog.text
    assert "wrong-pw" not in text and "right" not in text.replace("rights", "")
    cookie = client.get_cookie("webauthn")
    assert cookie is None or cookie.value not in text


def test_bad_tokens_are_audited(auth_app, caplog):
    with caplog.at_level(logging.INFO, logger="hatrac.audit"):
        reply = auth_app.test_client().get(
            "/hatrac/", headers={"Authorization": "Bearer not-a-token"}
        )
    assert reply.status_code == 401
    events = audit_events(caplog)
    assert any(e["event"] == "authn.failure" and e["provider"] == "bearer" for e in events)
    assert "not-a-token" not in caplog.text


def test_huge_login_body_in_process(auth_app):
    reply = auth_app.test_client().post(
        "/authn/session", data={"username": "a", "password": "p" * (10 * 2**20)}
    )
    assert reply.status_code == 413


def run_cli(config_path, *args, stdin: str = "") -> tuple[int, str]:
    import contextlib
    import sys

    out = io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(["--config", str(config_path), *args])
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue()


@pytest.fixture
def config_file(auth_config, tmp_path):
    path = tmp_path / "hatrac_config.json"
    path.write_text(json.dumps(auth_config))
    return path


def test_cli_one_liners(config_file, auth_config):
    import hatrac

    assert run_cli(config_file, "user", "add", "ann", "--password-stdin", stdin="pw1\n")[0] == 0
    assert run_cli(config_file, "user", "add", "ann", "--password-stdin", stdin="x\n")[0] == 1
    assert run_cli(config_file, "user", "add", "ben", "--display-name", "Ben")[0] == 0
    assert run_cli(config_file, "group", "add", "lab")[0] == 0
    assert run_cli(config_file, "group", "add", "all")[0] == 0
    assert run_cli(config_file, "group", "add-member", "lab", "ann")[0] == 0
    assert run_cli(config_file, "group", "add-member", "all", "g:lab")[0] == 0
    assert run_cli(config_file, "group", "add-member", "lab", "nobody")[0] == 1
    assert run_cli(config_file, "root-acl", "owner", "ann")[0] == 0
    code, out = run_cli(config_file, "user", "groups", "ann")
    assert out.split() == ["all", "lab"]
    code, out = run_cli(config_file, "group", "list")
    assert "lab\tann\t" in out.splitlines() and "all\t\tg:lab" in out.splitlines()
    code, out = run_cli(config_file, "group", "list", "--json")
    listed = json.loads(out)
    assert {"group": "lab", "role": "g:lab", "users": ["ann"], "groups": []} in listed
    code, out = run_cli(config_file, "user", "list")
    assert "ann\tenabled" in out and "ben\tenabled (no password)\tBen" in out
    code, out = run_cli(config_file, "token", "issue", "ann", "--expires-in", "3600")
    token = out.strip()
    assert code == 0 and token.startswith("hatrac_")

    app = hatrac.create_app(auth_config)
    try:
        client = app.test_client()
        reply = client.get("/hatrac/;acl", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 200  # ann owns the root
        reply = client.post("/authn/session", data={"username": "ann", "password": "pw1"})
        assert reply.status_code == 201
        assert {a["id"] for a in reply.get_json()["attributes"]} == {"ann", "g:lab", "g:all"}
        assert (
            run_cli(config_file, "user", "passwd", "ann", "--password-stdin", stdin="pw2\n")[0] == 0
        )
        assert client.get("/authn/session").status_code == 404  # sessions ended
        fresh = app.test_client()
        assert (
            fresh.post("/authn/session", data={"username": "ann", "password": "pw2"}).status_code
            == 201
        )
        assert run_cli(config_file, "user", "disable", "ann")[0] == 0
        assert fresh.get("/authn/session").status_code == 404
        assert (
            client.get("/hatrac/", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        )
        assert run_cli(config_file, "user", "enable", "ann")[0] == 0
        code, out = run_cli(config_file, "token", "list", "ann")
        token_id = out.split("\t")[0]
        assert "live" in out
        assert run_cli(config_file, "token", "revoke", token_id)[0] == 0
        assert run_cli(config_file, "token", "revoke", token_id)[0] == 1
        assert (
            client.get("/hatrac/", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        )
        assert run_cli(config_file, "group", "remove-member", "lab", "ann")[0] == 0
        assert run_cli(config_file, "user", "groups", "ann")[1] == ""
        assert run_cli(config_file, "group", "remove", "lab")[0] == 0
        assert run_cli(config_file, "user", "remove", "ben")[0] == 0
        assert run_cli(config_file, "user", "remove", "ben")[0] == 1
    finally:
        app.extensions["hatrac"].close()


def test_users_manage_their_own_tokens(auth_app, accounts):
    accounts.add_user("kim", "pw")
    accounts.add_user("lee", "pw")
    kim = auth_app.test_client()
    assert kim.post("/authn/token").status_code == 401
    assert kim.post("/authn/session", data={"username": "kim", "password": "pw"}).status_code == 201
    reply = kim.post("/authn/token", json={"expires_in": 3600, "description": "laptop"})
    assert reply.status_code == 201, reply.data
    made = reply.get_json()
    assert made["token"].startswith("hatrac_") and made["description"] == "laptop"
    assert made["expires"] is not None
    bearer = {"Authorization": "Bearer " + made["token"]}
    fresh = auth_app.test_client()
    assert fresh.get("/authn/session", headers=bearer).get_json()["client"]["id"] == "kim"
    # a token cannot mint more tokens
    assert fresh.post("/authn/token", headers=bearer).status_code == 403
    listed = kim.get("/authn/token").get_json()["tokens"]
    assert [t["id"] for t in listed] == [made["id"]] and "token" not in listed[0]
    assert kim.post("/authn/token", json={"expires_in": -5}).status_code == 400
    assert kim.post("/authn/token", data=b"\xff").status_code == 400
    # lee cannot revoke kim's token
    lee = auth_app.test_client()
    lee.post("/authn/session", data={"username": "lee", "password": "pw"})
    assert lee.delete(f"/authn/token/{made['id']}").status_code == 404
    assert kim.delete(f"/authn/token/{made['id']}").status_code == 204
    assert fresh.get("/hatrac/", headers=bearer).status_code == 401
    assert kim.delete(f"/authn/token/{made['id']}").status_code == 404
    # Basic works for scripts too
    import base64

    basic = {"Authorization": "Basic " + base64.b64encode(b"lee:pw").decode()}
    assert fresh.post("/authn/token", headers=basic).status_code == 201


def test_audit_survives_a_quiet_service_log(make_config, accounts):
    import hatrac

    app = hatrac.create_app(make_config(log_level="WARNING", password_hash_rounds=1000))
    try:
        events = []
        handler = logging.Handler()
        handler.emit = lambda record: events.append(json.loads(record.getMessage()))
        logging.getLogger("hatrac.audit").addHandler(handler)
        try:
            app.test_client().post("/authn/session", data={"username": "x", "password": "y"})
        finally:
            logging.getLogger("hatrac.audit").removeHandler(handler)
        assert [e["event"] for e in events][:1] == ["login.failure"]
    finally:
        app.extensions["hatrac"].close()

"""CORS over the Flask test client: preflights, grants, refusals and the CSRF rule.

What a real browser makes of these answers is in test_cors_browser.py.
"""

from __future__ import annotations

import pytest

import hatrac
from hatrac.auth.accounts import Accounts
from hatrac.config import ConfigError, build_config, load_config
from hatrac.model.directory import open_directory

LAB = "https://lab.example.org"
NS = {"Content-Type": "application/x-hatrac-namespace"}
PATHS = [
    "/hatrac/",
    "/hatrac/ns",
    "/hatrac/ns/obj",
    "/hatrac/ns/obj:01ABC",
    "/hatrac/ns;acl",
    "/hatrac/ns/obj;acl/read",
    "/hatrac/ns/obj;metadata",
    "/hatrac/ns/obj:01ABC;metadata/content-type",
    "/hatrac/ns/obj;versions",
    "/hatrac/ns/obj;upload",
    "/hatrac/ns/obj;upload/JOB",
    "/hatrac/ns/obj;upload/JOB/0",
    "/authn/session",
    "/authn/token",
    "/authn/token/7",
]
BAD_ORIGINS = [
    "null",
    "lab.example.org",
    "https://lab.example.org/",
    "https://Lab.Example.org",
    "HTTPS://lab.example.org",
    "https://lab.example.org.evil.com",
    "https://evil.com/https://lab.example.org",
    "https://lab.example.org:443",
    "http://lab.example.org",
    "https://lab.example.org, https://evil.com",
    "*",
    "",
]


@pytest.fixture
def backends():
    return ("sqlite", "filesystem")


@pytest.fixture
def cors_app(make_config):
    config = make_config(cors_allowed_origins=[LAB], password_hash_rounds=1000)
    loaded = load_config(config)
    directory = open_directory(loaded.database_dsn)
    directory.initialize(loaded.root_acls)
    accounts = Accounts(directory, loaded)
    accounts.add_user("lab", "pw")
    accounts.close()
    directory.close()
    application = hatrac.create_app(config)
    yield application
    application.extensions["hatrac"].close()


def preflight(web, path, origin=LAB, method="PUT", headers="content-type, if-match"):
    request_headers = {"Access-Control-Request-Method": method}
    if origin is not None:
        request_headers["Origin"] = origin
    if headers:
        request_headers["Access-Control-Request-Headers"] = headers
    return web.options(path, headers=request_headers)


def test_preflight_is_granted_on_every_resource(cors_app):
    for path in PATHS:
        check_grant(preflight(cors_app.test_client(), path, headers="authorization, content-md5"))


def check_grant(reply):
    assert reply.status_code == 204, reply.data
    assert reply.headers["Access-Control-Allow-Origin"] == LAB
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"
    methods = reply.headers["Access-Control-Allow-Methods"].split(", ")
    assert set(methods) == {"GET", "HEAD", "PUT", "POST", "DELETE"}
    allowed = reply.headers["Access-Control-Allow-Headers"].split(", ")
    for header in (
        "authorization",
        "content-type",
        "content-md5",
        "content-sha256",
        "content-disposition",
        "if-match",
        "if-none-match",
        "range",
        "x-requested-with",
    ):
        assert header in allowed
    assert reply.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in reply.headers["Vary"]


def test_malformed_or_unlisted_origins_get_no_grant(cors_app):
    web = cors_app.test_client()
    for origin in BAD_ORIGINS:
        reply = preflight(web, "/hatrac/ns/obj", origin=origin)
        assert reply.status_code == 403, origin
        assert not any(key.startswith("Access-Control-") for key, _ in reply.headers)
        assert b"cors_allowed_origins" in reply.data
        actual = web.get("/hatrac/", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in actual.headers


def test_preflight_with_unknown_methods_or_headers_is_refused(cors_app):
    for method, headers, words in [
        ("PATCH", "", b"PATCH"),
        ("TRACE", "", b"TRACE"),
        ("put", "", b"put"),
        ("PUT", "x-evil", b"x-evil"),
        ("PUT", "content-type, cookie", b"cookie"),
    ]:
        reply = preflight(cors_app.test_client(), "/hatrac/ns", method=method, headers=headers)
        assert reply.status_code == 403 and words in reply.data, method
        assert "Access-Control-Allow-Origin" not in reply.headers


def test_actual_responses_expose_the_protocol_headers(cors_app):
    web = cors_app.test_client()
    reply = web.get("/hatrac/", headers={"Origin": LAB})
    assert reply.headers["Access-Control-Allow-Origin"] == LAB
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"
    exposed = reply.headers["Access-Control-Expose-Headers"].split(", ")
    for header in (
        "ETag",
        "Location",
        "Content-Location",
        "Content-MD5",
        "Content-SHA256",
        "Content-Range",
        "Content-Disposition",
        "Content-Length",
        "X-Request-Id",
    ):
        assert header in exposed
    assert "Origin" in reply.headers["Vary"]
    # errors carry the grant too, so the app can read why
    missing = web.get("/hatrac/nothing/here", headers={"Origin": LAB})
    assert missing.status_code in (401, 404)
    assert missing.headers["Access-Control-Allow-Origin"] == LAB
    # outside the API (health) nothing is granted
    health = web.get("/hatrac-health/live", headers={"Origin": LAB})
    assert "Access-Control-Allow-Origin" not in health.headers


def test_csrf_accepts_listed_origins_only(cors_app):
    web = cors_app.test_client()
    login = web.post("/authn/session", data={"username": "lab", "password": "pw"})
    assert login.status_code == 201
    assert web.put("/hatrac/labns", headers={**NS, "Origin": LAB}).status_code == 201
    for origin in BAD_ORIGINS[:-2] + ["https://evil.example"]:
        refused = web.put("/hatrac/labns/x", data=b"1", headers={"Origin": origin})
        assert refused.status_code == 403, origin
    assert web.get("/hatrac/labns", headers={"Origin": LAB}).json == []
    assert web.put("/hatrac/labns/x", data=b"1", headers={"Origin": LAB}).status_code == 201
    assert web.delete("/authn/session", headers={"Origin": LAB}).status_code == 204
    # a login from a listed origin is allowed, from another refused
    other = cors_app.test_client()
    evil = other.post(
        "/authn/session",
        data={"username": "lab", "password": "pw"},
        headers={"Origin": "https://lab.example.org.evil.com"},
    )
    assert evil.status_code == 403
    ok = other.post(
        "/authn/session", data={"username": "lab", "password": "pw"}, headers={"Origin": LAB}
    )
    assert ok.status_code == 201


def test_star_is_credential_less(make_config):
    application = hatrac.create_app(make_config(cors_allowed_origins=["*"]))
    try:
        web = application.test_client()
        reply = preflight(web, "/hatrac/", origin="https://any.example", method="GET", headers="")
        assert reply.status_code == 204
        assert reply.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in reply.headers
        assert "authorization" not in reply.headers["Access-Control-Allow-Headers"]
        bearer = preflight(web, "/hatrac/", origin="https://any.example", headers="authorization")
        assert bearer.status_code == 403
        actual = web.get("/hatrac/", headers={"Origin": "https://any.example"})
        assert actual.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in actual.headers
        assert "Access-Control-Allow-Origin" not in web.get("/hatrac/").headers
        # '*' never passes the CSRF check of cookie clients
        assert build_config({"cors_allowed_origins": ["*"]})
    finally:
        application.extensions["hatrac"].close()


def test_no_origins_configured_by_default(make_config):
    application = hatrac.create_app(make_config())
    try:
        web = application.test_client()
        assert preflight(web, "/hatrac/", origin=LAB).status_code == 403
        reply = web.get("/hatrac/", headers={"Origin": LAB})
        assert "Access-Control-Allow-Origin" not in reply.headers
        assert "Origin" not in reply.headers.get("Vary", "")
        # a plain OPTIONS (no preflight) still answers with Allow
        assert "PUT" in web.options("/hatrac/").headers["Allow"]
    finally:
        application.extensions["hatrac"].close()


@pytest.mark.parametrize(
    "origin", ["null", "lab.example.org", "https://lab.example.org/", "HTTPS://LAB.org", "ftp://x"]
)
def test_config_refuses_malformed_origins(origin):
    with pytest.raises(ConfigError):
        build_config({"cors_allowed_origins": [origin]})

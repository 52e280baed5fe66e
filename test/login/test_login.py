"""The login front door over the Flask test client: challenges, preauth, pages, referrers."""

from __future__ import annotations

import pytest

import hatrac
from hatrac.login import safe_referrer

ATTACKS = [
    "https://evil.example/",
    "http://evil.example",
    "//evil.example/path",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "http://localhost.evil.example/",
    "https://localhost/hatrac/",  # another scheme than the page's
    "http://user@localhost/hatrac/",
    "http://localhost:8080/hatrac/",  # another port
    "\t//evil.example",
    " /hatrac/",
    "/hatrac/\n//evil.example",
    "evil.example/hatrac",
    "hatrac/",
    "/" + "a" * 5000,
]


@pytest.fixture
def backends():
    return ("sqlite", "filesystem")


@pytest.fixture
def web(make_config):
    application = hatrac.create_app(
        make_config(root_acls={"owner": ["admin"]}, password_hash_rounds=1000, web_interface=False)
    )
    yield application.test_client()
    application.extensions["hatrac"].close()


def app_with(make_config, **settings):
    # the 401 pages of the REST layer: the web interface (hatrac.web) has its own
    settings.setdefault("web_interface", False)
    return hatrac.create_app(make_config(root_acls={"owner": ["admin"]}, **settings))


def test_with_the_web_interface_a_page_request_goes_to_the_login_page(make_config):
    application = app_with(make_config, web_interface=True)
    try:
        reply = application.test_client().get("/hatrac/", headers={"Accept": "text/html"})
        assert reply.status_code == 303
        assert reply.headers["Location"] == "/authn/login?referrer=%2Fhatrac%2F"
    finally:
        application.extensions["hatrac"].close()


def test_401_carries_a_challenge(web):
    plain = web.get("/hatrac/")
    assert plain.status_code == 401
    assert (
        plain.headers["WWW-Authenticate"]
        == 'Basic realm="hatrac", charset="UTF-8", Bearer realm="hatrac"'
    )
    script = web.get("/hatrac/", headers={"X-Requested-With": "XMLHttpRequest"})
    assert script.headers["WWW-Authenticate"] == 'Bearer realm="hatrac"'
    fetch = web.get("/hatrac/", headers={"Sec-Fetch-Mode": "cors", "Accept": "application/json"})
    assert fetch.headers["WWW-Authenticate"] == 'Bearer realm="hatrac"'
    # a browser navigation gets the page with the login link, not a Basic prompt
    page = web.get("/hatrac/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.headers["WWW-Authenticate"] == 'Bearer realm="hatrac"'
    assert b"/authn/login" in page.data
    session = web.get("/authn/token")
    assert session.status_code == 401 and "WWW-Authenticate" in session.headers
    assert "WWW-Authenticate" not in web.get("/authn/session").headers  # 404, not 401


def test_challenge_follows_the_providers(make_config):
    application = app_with(make_config, authn_providers=["session"])
    try:
        reply = application.test_client().get("/hatrac/")
        assert reply.headers["WWW-Authenticate"] == 'Session realm="hatrac", login="/authn/session"'
    finally:
        application.extensions["hatrac"].close()


def test_html_401_links_to_the_login_page(web):
    reply = web.get("/hatrac/a%20b?x=1&y=<2>", headers={"Accept": "text/html"})
    assert reply.status_code == 401
    page = reply.get_data(as_text=True)
    assert 'href="/authn/login?referrer=%2Fhatrac%2Fa%2520b%3Fx%3D1%26y%3D%3C2%3E"' in page
    assert "<2>" not in page
    text = web.get("/hatrac/", headers={"Accept": "text/plain"})
    assert "/authn/login" not in text.get_data(as_text=True)


def test_error_templates_get_the_login_url(make_config):
    application = app_with(
        make_config, error_templates={"401": '<a href="$login_url">in</a> $message'}
    )
    try:
        reply = application.test_client().get("/hatrac/", headers={"Accept": "text/html"})
        assert '<a href="/authn/login?referrer=%2Fhatrac%2F">in</a>' in reply.get_data(as_text=True)
    finally:
        application.extensions["hatrac"].close()


def test_preauth_in_webauthn2_shape(web):
    reply = web.get("/authn/preauth?referrer=/hatrac/ns")
    assert reply.status_code == 200
    assert reply.json == {
        "authentication_type": "database",
        "cookie": "webauthn",
        "login_form": {
            "method": "POST",
            "action": "/authn/session",
            "input_fields": ["username", "password"],
        },
        "redirect_url": "/authn/login?referrer=%2Fhatrac%2Fns",
    }
    redirect = web.get("/authn/preauth?referrer=/hatrac/ns&do_redirect=true")
    assert redirect.status_code == 303
    assert redirect.headers["Location"].endswith("/authn/login?referrer=%2Fhatrac%2Fns")
    assert web.get("/authn/preauth").json["redirect_url"] == "/authn/login?referrer=%2Fhatrac%2F"


def test_login_page_is_static_and_strict(web):
    reply = web.get("/authn/login?referrer=/hatrac/")
    assert reply.status_code == 200 and reply.mimetype == "text/html"
    policy = reply.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert reply.headers["X-Frame-Options"] == "DENY"
    page = reply.get_data(as_text=True)
    assert "<script>" not in page and "style=" not in page and "<style" not in page
    assert '<script src="/authn/static/login.js"' in page
    script = web.get("/authn/static/login.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert web.get("/authn/static/login.css").mimetype == "text/css"
    for missing in ("nothing.js", "login.html", "..%2F__init__.py", "%2E%2E"):
        assert web.get("/authn/static/" + missing).status_code == 404, missing
    logout = web.get("/authn/logout?referrer=/hatrac/")
    assert logout.status_code == 200 and "logout-form" in logout.get_data(as_text=True)


@pytest.mark.parametrize("attack", ATTACKS)
def test_open_redirects_are_refused(web, attack):
    assert safe_referrer(attack, "http://localhost") is None
    for path in ("/authn/login", "/authn/logout", "/authn/preauth"):
        reply = web.get(path, query_string={"referrer": attack})
        assert reply.status_code == 400, (path, attack)
        assert b"referrer" in reply.data


def test_same_origin_referrers_are_kept():
    origin = "http://localhost"
    assert safe_referrer("/hatrac/ns?x=1", origin) == "/hatrac/ns?x=1"
    assert safe_referrer("http://localhost/hatrac/ns", origin) == "/hatrac/ns"
    assert safe_referrer("http://localhost", origin) == "/"
    assert safe_referrer("/hatrac/a%2Fb", origin) == "/hatrac/a%2Fb"


def test_without_sessions_there_is_no_login(make_config):
    application = app_with(make_config, authn_providers=["basic"])
    try:
        client = application.test_client()
        assert client.get("/authn/login").status_code == 404
        assert client.get("/authn/preauth").status_code == 404
        html = client.get("/hatrac/", headers={"Accept": "text/html"}).get_data(as_text=True)
        assert "/authn/login" not in html
    finally:
        application.extensions["hatrac"].close()


def test_pages_without_a_referrer_name_the_service_root(make_config):
    """The page's script returns to its referrer: under any service prefix, there is one."""
    application = app_with(make_config, service_prefix="/files")
    try:
        web = application.test_client()
        for page in ("/authn/login", "/authn/logout"):
            reply = web.get(page)
            assert reply.status_code == 303
            assert reply.headers["Location"] == f"{page}?referrer=%2Ffiles%2F"
            followed = web.get(reply.headers["Location"])
            assert followed.status_code == 200 and followed.mimetype == "text/html"
    finally:
        application.extensions["hatrac"].close()

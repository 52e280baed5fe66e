"""Content safety headers on object and version responses (hatrac/rest/content_safety.py).

Header-level checks through the Flask test client; what a real browser does
with them is in test_content_safety_browser.py.
"""

from __future__ import annotations

import pytest

import hatrac
from hatrac.config import ConfigError, build_config
from hatrac.rest.content_safety import is_active, media_type

NAME = "filename*=UTF-8''report.html"


@pytest.fixture
def backends():
    """Header logic does not depend on the backend: one pair is enough."""
    return ("sqlite", "filesystem")


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html",
        "TEXT/HTML; charset=utf-8",
        " text/html ",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "application/rss+xml",
        "application/javascript",
        "text/javascript",
        "multipart/x-mixed-replace; boundary=x",
        "text/html, image/png",  # a browser would take the last valid type
        "image/png, text/html",
        "text/html;",
        "html",
        "text/ html",
        "text/plain\x00text/html",
    ],
)
def test_active_types_are_attachments(client, ns, content_type):
    assert is_active(content_type)
    reply = client.put(
        ns + "/page",
        user="alice",
        data=b"<script>alert(1)</script>",
        headers={"Content-Type": content_type, "Content-Disposition": NAME},
    )
    assert reply.status == 201, reply.text
    version = reply.headers["Location"]
    for url in (ns + "/page", version):
        for method in ("GET", "HEAD"):
            got = client.request(method, url, user="alice")
            assert got.status == 200
            assert got.headers["X-Content-Type-Options"] == "nosniff"
            assert got.headers["Content-Security-Policy"] == "sandbox"
            assert got.headers["Content-Disposition"] == "attachment; " + NAME


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/csv", "image/png", "application/pdf", "text/plain+gzip"]
)
def test_passive_types_keep_their_disposition(client, ns, content_type):
    assert not is_active(content_type)
    client.put(
        ns + "/data",
        user="alice",
        data=b"<html><script>alert(1)</script>",
        headers={"Content-Type": content_type, "Content-Disposition": NAME},
    )
    got = client.get(ns + "/data", user="alice")
    assert got.headers["Content-Type"] == content_type
    assert got.headers["Content-Disposition"] == NAME
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Security-Policy"] == "sandbox"


def test_every_object_answer_carries_nosniff(client, ns):
    client.put(ns + "/o", user="alice", data=b"0123456789", headers={"Content-Type": "text/html"})
    plain = client.get(ns + "/o", user="alice")
    # no stored name: the object's name, as upstream (issue 11)
    assert plain.headers["Content-Disposition"] == "attachment; filename*=UTF-8''o"
    etag = plain.headers["ETag"]
    unchanged = client.get(ns + "/o", user="alice", headers={"If-None-Match": etag})
    ranged = client.get(ns + "/o", user="alice", headers={"Range": "bytes=2-4"})
    untyped = client.put(ns + "/raw", user="alice", data=b"<html>")
    raw = client.get(ns + "/raw", user="alice")
    assert unchanged.status == 304 and unchanged.headers["X-Content-Type-Options"] == "nosniff"
    assert ranged.status == 206 and ranged.headers["Content-Security-Policy"] == "sandbox"
    assert untyped.status == 201 and raw.headers["Content-Type"] == "application/octet-stream"
    assert raw.headers["X-Content-Type-Options"] == "nosniff"
    assert raw.headers["Content-Disposition"] == "filename*=UTF-8''raw"  # not an attachment


def test_admin_adds_attachment_types(make_config):
    app = hatrac.create_app(make_config(attachment_content_types=["text/markdown"]))
    try:
        test_client = app.test_client()
        environ = {"REMOTE_USER": "alice"}
        put = test_client.put(
            "/hatrac/notes.md",
            data=b"# notes",
            headers={"Content-Type": "text/markdown"},
            environ_base=environ,
        )
        assert put.status_code == 201
        got = test_client.get("/hatrac/notes.md", environ_base=environ)
        assert got.headers["Content-Disposition"] == "attachment; filename*=UTF-8''notes.md"
    finally:
        app.extensions["hatrac"].close()


def test_media_type_parsing():
    assert media_type("Text/HTML; charset=UTF-8") == "text/html"
    assert media_type("image/png") == "image/png"
    assert media_type("") is None and media_type(None) is None
    assert media_type("a/b, c/d") is None
    assert not is_active(None)


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"download_origin": "files.example.org"}, "scheme://host"),
        ({"download_origin": "https://files.example.org/"}, "must not end with '/'"),
        (
            {"download_origin": "https://f.org", "cors_allowed_origins": ["https://f.org"]},
            "must not also be",
        ),
        ({"attachment_content_types": ["markdown"]}, "media types"),
        ({"attachment_content_types": [1]}, "media types"),
    ],
)
def test_bad_settings_are_refused(settings, words):
    with pytest.raises(ConfigError) as refused:
        build_config(settings)
    assert words in str(refused.value)


def test_download_origin_serves_anonymous_reads_only(make_config):
    app = hatrac.create_app(make_config(download_origin="http://files.example.org"))
    try:
        web = app.test_client()
        alice = {"REMOTE_USER": "alice"}
        web.put(
            "/hatrac/ns",
            headers={"Content-Type": "application/x-hatrac-namespace"},
            environ_base=alice,
        )
        web.put(
            "/hatrac/ns/page",
            data=b"<h1>hi</h1>",
            headers={"Content-Type": "text/html", "Content-Disposition": NAME},
            environ_base=alice,
        )
        web.put(
            "/hatrac/ns2",
            headers={"Content-Type": "application/x-hatrac-namespace"},
            environ_base=alice,
        )
        web.put("/hatrac/ns2/secret", data=b"s", environ_base=alice)
        assert web.put("/hatrac/ns;acl/subtree-read/*", environ_base=alice).status_code == 204
        files = {"Host": "files.example.org"}
        got = web.get("/hatrac/ns/page", headers=files)
        assert got.status_code == 200 and got.data == b"<h1>hi</h1>"
        assert got.headers["Content-Disposition"] == NAME  # inline, as stored
        assert got.headers["Content-Security-Policy"].startswith("sandbox allow-scripts")
        assert "allow-same-origin" not in got.headers["Content-Security-Policy"]
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        # the service's own origin still serves it as a download
        own = web.get("/hatrac/ns/page", environ_base=alice)
        assert own.headers["Content-Disposition"] == "attachment; " + NAME
        # no credential counts on the download origin: REMOTE_USER is ignored
        assert web.get("/hatrac/ns2/secret", headers=files, environ_base=alice).status_code == 401
        for method in ("PUT", "POST", "DELETE"):
            refused = web.open("/hatrac/ns/page", method=method, headers=files, environ_base=alice)
            assert refused.status_code == 403, method
        assert web.post("/authn/session", headers=files, data={"username": "a"}).status_code == 403
        assert web.get("/authn/session", headers=files).status_code == 404
        assert web.get("/hatrac/ns/page", environ_base=alice).status_code == 200
    finally:
        app.extensions["hatrac"].close()

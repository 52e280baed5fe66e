"""The fast path of plain small PUTs (hatrac/rest/fast_put.py) answers as Flask does.

Each PUT is sent twice, through the application (fast path first) and
straight to the Flask path behind it, to the same name: the two answers
must be the same (status, every header in order, body), but for the new
version's id. The PUTs the fast path takes (a new object, a new version, an
empty body, digests and a disposition given, a name that needs escaping)
and the ones it hands over before reading the body (conditions, a query
string, a namespace, a body kept as a file, a malformed digest) or after it
(refused by the model: a wrong digest, no right to create, a missing
parent) are covered; a PUT handed over is never stored twice.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging

import pytest
from fastpath import both

PAIRS = [("sqlite", "filesystem"), ("postgres", "filesystem")]
NS = {"Content-Type": "application/x-hatrac-namespace"}
ALICE = {"REMOTE_USER": "alice"}
BODY = b"b" * 1024
MD5 = base64.b64encode(hashlib.md5(BODY).digest()).decode()
SHA256 = base64.b64encode(hashlib.sha256(BODY).digest()).decode()


@pytest.fixture
def tree(app):
    """A namespace where anyone may create and update, one only alice may write in,
    an object."""
    client = app.test_client()

    def put(path, data=b"", headers=None):
        reply = client.put(path, data=data, headers=headers, environ_base=ALICE)
        assert reply.status_code in (201, 204), reply.get_data()

    put("/hatrac/put", headers=NS)
    put("/hatrac/put;acl/create/*")
    put("/hatrac/put;acl/subtree-read/*")
    put("/hatrac/put;acl/subtree-update/*")
    put("/hatrac/put/old", b"first")
    put("/hatrac/closed", headers=NS)
    return client


def _version_of(reply) -> str:
    return reply.headers["Location"].rsplit(":", 1)[1]


def _same_but_version(through, alone) -> None:
    assert through.status == alone.status
    ours, theirs = _version_of(through), _version_of(alone)
    assert ours != theirs  # two versions were made, one by each path
    assert [(k, v.replace(ours, "V")) for k, v in through.headers.items()] == [
        (k, v.replace(theirs, "V")) for k, v in alone.headers.items()
    ]
    assert through.get_data().replace(ours.encode(), b"V") == alone.get_data().replace(
        theirs.encode(), b"V"
    )


FAST = [
    ("/hatrac/put/new", BODY, {"Content-Type": "text/plain"}),
    ("/hatrac/put/old", BODY, {}),  # a new version
    ("/hatrac/put/sums", BODY, {"Content-MD5": MD5, "Content-SHA256": SHA256}),
    ("/hatrac/put/named", BODY, {"Content-Disposition": "filename*=UTF-8''a%20b.txt"}),
    ("/hatrac/put/a%20b%C3%A9", BODY, {}),
]


@pytest.mark.parametrize("backends", PAIRS, indirect=True)
def test_plain_small_puts_are_stored_by_the_fast_path_as_by_flask(app, tree):
    for path, data, headers in FAST:
        headers = {**headers, "X-Request-Id": "fixed-id"}
        through, alone, fast = both(app, "PUT", path, headers, data=data, environ_base=ALICE)
        assert fast, (path, headers)
        assert through.status_code == 201, through.get_data()
        _same_but_version(through, alone)
        for reply in (through, alone):
            stored = tree.get(reply.headers["Content-Location"])
            assert stored.status_code == 200 and stored.get_data() == data
            assert stored.headers["ETag"] == reply.headers["ETag"]
            for header in ("Content-Type", "Content-Disposition"):
                if header in headers:
                    assert stored.headers[header] == headers[header]
    versions = tree.get("/hatrac/put/old;versions", headers={"Accept": "application/json"})
    assert len(versions.get_json()) == 3
    # an empty body, its length declared (werkzeug's client sends none: Flask's then)
    for environ, taken in ({**ALICE, "CONTENT_LENGTH": "0"}, True), (ALICE, False):
        through, alone, fast = both(
            app, "PUT", "/hatrac/put/empty", {"X-Request-Id": "e"}, environ_base=environ
        )
        assert fast == taken and through.status_code == 201
        _same_but_version(through, alone)
        assert tree.get("/hatrac/put/empty").get_data() == b""
    # an anonymous creator (create and update are granted to everyone here)
    through, alone, fast = both(app, "PUT", "/hatrac/put/anon", {"X-Request-Id": "a"}, data=b"x")
    assert fast and through.status_code == 201
    _same_but_version(through, alone)


HANDED_OVER = [
    # before the body is read: not plain
    ("/hatrac/put/old", {"If-Match": '"other"'}, ALICE),  # 412
    ("/hatrac/put/old", {"If-None-Match": "*"}, ALICE),  # 412
    ("/hatrac/put/old?parents=maybe", {}, ALICE),  # 400
    ("/hatrac/put/old", {"Content-MD5": "not base64"}, ALICE),  # 400
    ("/hatrac/put", NS, ALICE),  # 409: the namespace exists
    ("/hatrac/put/old:V1", {}, ALICE),  # 405 (versions are immutable)
    ("/hatrac/put/old;acl", {}, ALICE),
    ("/hatrac/", {}, ALICE),  # the root
    ("/hatrac/closed/obj", {"Authorization": "Basic eDp5"}, {}),  # 401
    # after it: refused by the model
    ("/hatrac/put/old", {"Content-MD5": base64.b64encode(b"0" * 16).decode()}, ALICE),  # 400
    ("/hatrac/closed/obj", {}, {}),  # 401: anonymous may not create here
    ("/hatrac/missing/obj", {}, ALICE),  # 404/409: no parent
    ("/hatrac/put/old/below", {}, ALICE),  # the parent is an object
]


@pytest.mark.parametrize("backends", PAIRS, indirect=True)
def test_everything_else_is_answered_by_flask_and_nothing_is_stored_twice(app, tree):
    for path, headers, environ in HANDED_OVER:
        headers = {**headers, "X-Request-Id": "fixed-id"}
        through, alone, fast = both(app, "PUT", path, headers, data=BODY, environ_base=environ)
        assert not fast, (path, headers, through.status)
        assert through.status_code >= 400, (path, through.status, through.get_data())
        assert through.status == alone.status, (path, through.get_data(), alone.get_data())
        assert list(through.headers.items()) == list(alone.headers.items())
        assert through.get_data() == alone.get_data()
    versions = tree.get("/hatrac/put/old;versions", headers={"Accept": "application/json"})
    assert len(versions.get_json()) == 1
    # a body kept as a file (above inline_max_size), and a Referer (the CSRF check of
    # a cookie request from another page is Flask's): stored by Flask
    big = b"f" * (app.extensions["hatrac"].model.storage.inline_max_size + 1)
    for path, data, headers in (
        ("/hatrac/put/big", big, {}),
        ("/hatrac/put/referred", BODY, {"Referer": "http://elsewhere/"}),
    ):
        headers = {**headers, "X-Request-Id": "f"}
        through, alone, fast = both(app, "PUT", path, headers, data=data, environ_base=ALICE)
        assert not fast and through.status_code == 201
        _same_but_version(through, alone)
        assert tree.get(path).get_data() == data


@pytest.mark.parametrize("backends", PAIRS[:1], indirect=True)
def test_the_fast_path_logs_what_flask_logs(app, tree):
    lines = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(record.getMessage()))

    logger = logging.getLogger("hatrac.access")
    handler = Keep()
    logger.addHandler(handler)
    wrong = {"Content-MD5": base64.b64encode(b"0" * 16).decode()}
    try:
        for headers, environ, status in ((), ALICE, 201), (wrong, ALICE, 400), ((), {}, 201):
            lines.clear()
            headers = {**dict(headers), "X-Request-Id": "r", "User-Agent": "t"}
            both(app, "PUT", "/hatrac/put/logged", headers, data=BODY, environ_base=environ)
            assert len(lines) == 2
            for line in lines:
                line.pop("time"), line.pop("duration_ms")
            assert lines[0] == lines[1]
            assert lines[0]["status"] == status and lines[0]["bytes_in"] == len(BODY)
            assert lines[0]["client"] == environ.get("REMOTE_USER")
    finally:
        logger.removeHandler(handler)


class _Breaking:
    """A request body whose reads fail, as a client's reset connection does."""

    def read(self, *args):
        raise OSError("connection reset by peer")

    readline = read


@pytest.mark.parametrize("backends", PAIRS[:1], indirect=True)
def test_a_body_that_cannot_be_read_whole_is_refused_as_by_flask(app, tree):
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    def send(wsgi, stream):
        environ = EnvironBuilder(
            path="/hatrac/put/broken",
            method="PUT",
            headers={"X-Request-Id": "b"},
            environ_base={**ALICE, "RAW_URI": "/hatrac/put/broken"},
        ).get_environ()
        environ.update({"wsgi.input": stream, "CONTENT_LENGTH": str(len(BODY))})
        body, status, headers = run_wsgi_app(wsgi, environ, buffered=True)
        return status, list(headers.items()), b"".join(body)

    fast = app.wsgi_app
    for make in (_Breaking, lambda: io.BytesIO(BODY[:10])):
        through, alone = send(fast, make()), send(fast.flask, make())
        assert through == alone and through[0].startswith("400"), (through, alone)
    assert tree.get("/hatrac/put/broken").status_code == 404

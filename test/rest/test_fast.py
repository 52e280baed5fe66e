"""The fast path of plain object reads (hatrac/rest/fast.py) answers as Flask does.

Each request is sent twice, through the application (fast path first) and
straight to the Flask path behind it, and the two answers must be the same:
status, every header (in order) and body. The cases the fast path takes
(plain GET and HEAD, empty object, active content, a given request id) and
the ones it must hand over (conditions, ranges, errors, listings, files,
versions, query strings, bodies) are both covered; a handed-over request
must not have been answered by the fast path.
"""

from __future__ import annotations

import json
import logging

import pytest
from fastpath import both, same

PAIRS = [("sqlite", "filesystem"), ("postgres", "filesystem")]
NS = {"Content-Type": "application/x-hatrac-namespace"}


@pytest.fixture
def tree(app):
    """A namespace anyone may read, with a small object, an empty one, an active
    one, a file-stored one and a private one."""
    client = app.test_client()
    alice = {"REMOTE_USER": "alice"}

    def put(path, data=b"", headers=None):
        reply = client.put(path, data=data, headers=headers, environ_base=alice)
        assert reply.status_code in (201, 204), reply.get_data()

    put("/hatrac/fast", headers=NS)
    put("/hatrac/fast;acl/subtree-read/*")
    put("/hatrac/fast/small", b"s" * 1024, {"Content-Type": "text/plain"})
    put("/hatrac/fast/empty")
    put("/hatrac/fast/page", b"<p>hi</p>", {"Content-Type": "text/html"})
    put("/hatrac/fast/file", b"f" * 70_000)
    put("/hatrac/private", headers=NS)
    put("/hatrac/private/obj", b"p")
    return client


FAST = [
    ("GET", "/hatrac/fast/small", {}),
    ("HEAD", "/hatrac/fast/small", {}),
    ("GET", "/hatrac/fast/empty", {}),
    ("GET", "/hatrac/fast/page", {}),  # active content: an attachment, sandboxed
    ("GET", "/hatrac/fast/small", {"Accept": "application/json"}),
]

HANDED_OVER = [
    ("GET", "/hatrac/fast/small", {"If-None-Match": "*"}),  # 304
    ("GET", "/hatrac/fast/small", {"If-Match": '"other"'}),  # 412
    ("GET", "/hatrac/fast/small", {"Range": "bytes=0-9"}),  # 206
    ("GET", "/hatrac/fast/small", {"Range": "bytes=5000-"}),  # 416
    ("GET", "/hatrac/fast/missing", {}),  # 404
    ("GET", "/hatrac/private/obj", {}),  # 401: anonymous may not read
    ("GET", "/hatrac/fast", {}),  # a listing
    ("GET", "/hatrac/fast/", {}),
    ("GET", "/hatrac/fast/file", {}),  # stored as a file: streamed by the Flask path
    ("GET", "/hatrac/fast/small;versions", {}),
    ("GET", "/hatrac/fast/small?x=1", {}),
    ("GET", "/hatrac/fast/small", {"Authorization": "Basic eDp5"}),  # 401
    ("GET", "/hatrac/fast/bad%zz", {}),  # 400
    ("PUT", "/hatrac/fast/small", {"If-Match": '"other"'}),  # 412 (PUTs: test_fast_put.py)
    ("GET", "/hatrac/", {}),
]


@pytest.mark.parametrize("backends", PAIRS, indirect=True)
def test_plain_reads_are_answered_by_the_fast_path_as_by_flask(app, tree):
    for method, path, headers in FAST:
        headers = {**headers, "X-Request-Id": "fixed-id"}  # else the one header that differs
        through, alone, fast = both(app, method, path, headers)
        assert fast, (method, path, headers)
        assert through.status_code == 200, through.get_data()
        same(through, alone)
    through, alone, fast = both(app, "GET", "/hatrac/fast/small")
    assert fast and through.headers["X-Request-Id"] != alone.headers["X-Request-Id"]
    assert len(through.headers["X-Request-Id"]) == 16


@pytest.mark.parametrize("backends", PAIRS, indirect=True)
def test_everything_else_is_handed_to_flask(app, tree):
    for method, path, headers in HANDED_OVER:
        headers = {**headers, "X-Request-Id": "fixed-id"}
        through, alone, fast = both(app, method, path, headers)
        assert not fast, (method, path, headers, through.status)
        same(through, alone)
    # a version by id, and a user with rights on the private object (REMOTE_USER)
    version = app.test_client().get("/hatrac/fast/small").headers["Content-Location"]
    through, alone, fast = both(app, "GET", version, {"X-Request-Id": "v"})
    assert not fast and through.status_code == 200
    same(through, alone)
    owner = {"X-Request-Id": "o"}
    through, alone, fast = both(
        app, "GET", "/hatrac/private/obj", owner, environ_base={"REMOTE_USER": "alice"}
    )
    assert fast and through.status_code == 200 and through.get_data() == b"p"
    same(through, alone)


@pytest.mark.parametrize("backends", PAIRS[:1], indirect=True)
def test_the_fast_path_logs_what_flask_logs(app, tree):
    lines = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(record.getMessage()))

    logger = logging.getLogger("hatrac.access")
    handler = Keep()
    logger.addHandler(handler)
    try:
        for method in ("GET", "HEAD"):
            lines.clear()
            through, alone, fast = both(
                app, method, "/hatrac/fast/small", {"X-Request-Id": "r", "User-Agent": "t"}
            )
            assert fast and len(lines) == 2
            for line in lines:
                line.pop("time"), line.pop("duration_ms")
            assert lines[0] == lines[1]
            assert lines[0]["bytes_out"] == (1024 if method == "GET" else 0)
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("backends", PAIRS[:1], indirect=True)
def test_paths_of_other_routes_under_the_prefix_are_flasks(make_config):
    """With the service at the root, /authn/... and the health endpoints stay Flask's."""
    import hatrac

    app = hatrac.create_app(make_config(service_prefix=""))
    try:
        app.testing = True
        for path in ("/authn/session", "/health/live"):
            through, alone, fast = both(app, "GET", path, {"X-Request-Id": "x"})
            assert not fast, path
            same(through, alone)
    finally:
        app.extensions["hatrac"].close()

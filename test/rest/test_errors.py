"""Error rendering: negotiated formats, templates, 405 with Allow, request ids."""

from __future__ import annotations

import pytest
from clients import FlaskProtocolClient

import hatrac


def test_plain_text_by_default(client):
    reply = client.get("/hatrac/nothing-here", user="admin")
    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert reply.text.startswith("404 Not Found\n")


def test_problem_details_json(client):
    reply = client.get(
        "/hatrac/nothing-here", user="admin", headers={"Accept": "application/problem+json"}
    )
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    problem = reply.json()
    assert problem["status"] == 404
    assert problem["title"] == "Not Found"
    assert "/nothing-here" in problem["detail"]
    assert problem["request_id"] == reply.headers["X-Request-Id"]


def test_html_error_templates(make_config):
    template = "<html><body><p class=custom>$status: $message</p></body></html>"
    app = hatrac.create_app(make_config(error_templates={"404": template}))
    client = FlaskProtocolClient(app)
    page = client.get("/hatrac/<script>", user="admin", headers={"Accept": "text/html"})
    # '<' must be percent-encoded in names: a 400 uses the built-in page
    assert page.status == 400
    assert "<h1>Bad Request</h1>" in page.text
    assert "<script>" not in page.text
    missing = client.get("/hatrac/absent", user="admin", headers={"Accept": "text/html"})
    assert missing.status == 404
    assert missing.text.startswith("<html><body><p class=custom>404: ")
    app.extensions["hatrac"].close()


def test_405_lists_allowed_methods(client, ns):
    reply = client.post(ns + ";acl/read", user="alice")
    assert reply.status == 405
    assert set(reply.headers["Allow"].replace(" ", "").split(",")) == {
        "GET",
        "HEAD",
        "PUT",
        "DELETE",
    }
    reply = client.post(ns + ";acl", user="alice")  # the set itself is read-only
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, HEAD"


def test_options_tells_what_each_resource_takes(client, ns):
    # not a CORS preflight (no Origin): 200, no body, the Allow of that very resource
    obj = ns + "/obj"
    put = client.put(obj, user="alice", data=b"x", headers={"Content-Type": "text/plain"})
    version = put.headers["Location"]
    expected = {
        ns: "DELETE, GET, HEAD, OPTIONS, POST, PUT",
        obj: "DELETE, GET, HEAD, OPTIONS, POST, PUT",
        version: "DELETE, GET, HEAD, OPTIONS",
        ns + ";acl": "GET, HEAD, OPTIONS",
        ns + ";acl/read": "DELETE, GET, HEAD, OPTIONS, PUT",
        ns + ";acl/read/bob": "DELETE, GET, HEAD, OPTIONS, PUT",
        obj + ";versions": "GET, HEAD, OPTIONS",
        obj + ";metadata": "GET, HEAD, OPTIONS",
        obj + ";metadata/content-type": "DELETE, GET, HEAD, OPTIONS, PUT",
        obj + ";upload": "GET, HEAD, OPTIONS, POST",
        obj + ";upload/JOB": "DELETE, GET, HEAD, OPTIONS, POST",
        obj + ";upload/JOB/0": "OPTIONS, PUT",
        "/hatrac/": "DELETE, GET, HEAD, OPTIONS, POST, PUT",
    }
    for path, allow in expected.items():
        reply = client.request("OPTIONS", path, user="alice")
        assert (reply.status, reply.headers.get("Allow"), reply.body) == (200, allow, b""), path
    # anonymous too, and a name that does not exist: the methods, nothing about the name
    reply = client.request("OPTIONS", ns + "/missing;acl/read")
    assert (reply.status, reply.headers.get("Allow")) == (200, "DELETE, GET, HEAD, OPTIONS, PUT")
    # a path that is refused is refused
    assert client.request("OPTIONS", ns + "//x").status == 400


def test_paths_outside_the_prefix_are_404(client):
    assert client.get("/elsewhere").status == 404


def test_client_request_id_is_echoed(client):
    reply = client.get("/hatrac/", headers={"X-Request-Id": "abc-123"})
    assert reply.headers["X-Request-Id"] == "abc-123"
    generated = client.get("/hatrac/", headers={"X-Request-Id": "bad id with spaces"})
    assert generated.headers["X-Request-Id"] != "bad id with spaces"


# a newline, a carriage return, a tab, other C0 controls and DEL, in every part of a path
CONTROL_PATHS = [
    "/a%0Ab",
    "/a%0D%0Ab",
    "/%0A",
    "/ns/x%0A/y",
    "/a%09b",
    "/a%1Fb",
    "/a%7Fb",
    "/obj:v%0A1",
    "/obj;acl/read/bob%0A",
    "/obj;metadata/content-type%0A",
    "/obj;upload/job%0A",
]


@pytest.mark.parametrize("raw", CONTROL_PATHS)
def test_control_characters_in_a_path_are_400(client, raw):
    """Decoded control characters are refused with the parser's reason (a %0A once fell
    through Werkzeug's route pattern, whose '.' stops at a newline, to its bare 404)."""
    for method in ("GET", "HEAD", "PUT", "POST", "DELETE"):
        reply = client.request(
            method,
            "/hatrac" + raw,
            user="admin",
            headers={"Accept": "application/problem+json"},
            data=b"x" if method == "PUT" else None,
        )
        assert reply.status == 400, (method, raw, reply.text)
        if method != "HEAD":
            problem = reply.json()
            assert problem["status"] == 400
            assert "control character" in problem["detail"], problem

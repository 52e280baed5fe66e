"""Where a client can tell us from upstream Hatrac: ranges, media types, small answers,
what a GET and a listing carry (see docs/protocol.md)."""

from __future__ import annotations

import base64
import hashlib

BODY = bytes(range(200))
NS = {"Content-Type": "application/x-hatrac-namespace"}


def test_a_206_carries_no_whole_object_digests(client, ns):
    client.put(ns + "/r", user="alice", data=BODY)
    whole = client.get(ns + "/r", user="alice")
    assert whole.headers["Content-MD5"] == base64.b64encode(hashlib.md5(BODY).digest()).decode()
    for method in (client.get, client.head):
        part = method(ns + "/r", user="alice", headers={"Range": "bytes=10-19"})
        assert part.status == 206
        assert part.headers["Content-Range"] == f"bytes 10-19/{len(BODY)}"
        assert "Content-MD5" not in part.headers and "Content-SHA256" not in part.headers
    assert client.get(ns + "/r", user="alice", headers={"Range": "bytes=10-19"}).body == BODY[10:20]


def test_an_invalid_range_is_ignored(client, ns):
    client.put(ns + "/r", user="alice", data=BODY)
    for invalid in ("bytes=900000-5,1-2", "bytes=5-1", "bytes=1-2,9-3", "lines=1-2"):
        reply = client.get(ns + "/r", user="alice", headers={"Range": invalid})
        assert reply.status == 200, invalid
        assert reply.body == BODY and "Content-MD5" in reply.headers
    # valid ranges, several of them: 501 as upstream
    assert client.get(ns + "/r", user="alice", headers={"Range": "bytes=0-1,5-6"}).status == 501


def test_uri_lists_are_exactly_text_uri_list(client, ns):
    replies = [
        client.put(ns + "/sub", user="alice", headers=NS),
        client.put(ns + "/obj", user="alice", data=b"x"),
        client.post(
            ns + "/big;upload", user="alice", json={"chunk-length": 4, "content-length": 1}
        ),
        client.post(
            ns + "/moved",
            user="alice",
            json={"command": "rename_from", "source_name": ns.removeprefix("/hatrac") + "/obj"},
        ),
    ]
    for reply in replies:
        assert reply.status == 201, reply.text
        assert reply.headers["Content-Type"] == "text/uri-list"
    accept = {"Accept": "text/uri-list"}
    for url in (ns, ns + "/moved;versions", ns + "/big;upload"):
        listed = client.get(url, user="alice", headers=accept)
        assert listed.status == 200 and listed.headers["Content-Type"] == "text/uri-list"


def test_namespaces_have_no_versions(client, ns):
    assert client.get(ns + ";versions", user="alice").status == 404
    assert client.get("/hatrac/;versions", user="alice").status in (400, 404)


def test_content_disposition_names_the_object_when_none_is_stored(client, ns):
    for raw, expected in (("plain.txt", "plain.txt"), ("a%20b%C3%A9", "a%20b%C3%A9")):
        location = client.put(ns + "/" + raw, user="alice", data=b"x").headers["Location"]
        for url in (ns + "/" + raw, location):
            for method in (client.get, client.head):
                disposition = method(url, user="alice").headers["Content-Disposition"]
                assert disposition == "filename*=UTF-8''" + expected
    stored = "filename*=UTF-8''other.csv"
    headers = {"Content-Disposition": stored}
    client.put(ns + "/kept", user="alice", data=b"x", headers=headers)
    assert client.get(ns + "/kept", user="alice").headers["Content-Disposition"] == stored


def test_versions_listing_has_an_etag(client, ns):
    client.put(ns + "/obj", user="alice", data=b"1")
    first = client.get(ns + "/obj;versions", user="alice")
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    again = client.get(ns + "/obj;versions", user="alice", headers={"If-None-Match": etag})
    assert again.status == 304 and again.headers["ETag"] == etag
    client.put(ns + "/obj", user="alice", data=b"2")
    changed = client.get(ns + "/obj;versions", user="alice", headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert len(changed.json()) == 2


def test_namespace_type_put_on_an_object_makes_a_version(client, ns):
    # as upstream: a PUT on an existing object updates it, whatever its Content-Type
    client.put(ns + "/obj", user="alice", data=b"data")
    reply = client.put(ns + "/obj", user="alice", headers=NS)
    assert reply.status == 201 and reply.text.startswith(ns + "/obj:")
    got = client.get(ns + "/obj", user="alice")
    assert got.body == b"" and got.headers["Content-Type"] == NS["Content-Type"]
    assert len(client.get(ns + "/obj;versions", user="alice").json()) == 2


def test_answers_without_content_carry_no_media_type(client, ns):
    """A 204 or 304 has no body, so no Content-Type (not Flask's default text/html)."""
    stored = client.put(ns + "/empty-answers", user="alice", data=b"x")
    etag = client.get(ns + "/empty-answers", user="alice").headers["ETag"]
    answers = [
        client.put(ns + ";acl/read/bob", user="alice"),
        client.delete(ns + ";acl/read/bob", user="alice"),
        client.get(ns + "/empty-answers", user="alice", headers={"If-None-Match": etag}),
        client.delete(stored.text.strip(), user="alice"),
    ]
    assert [reply.status for reply in answers] == [204, 204, 304, 204]
    for reply in answers:
        assert "Content-Type" not in reply.headers, reply.headers

"""Objects and versions: PUT, GET/HEAD headers, versions, delete, digests."""

from __future__ import annotations

import base64
import hashlib

import pytest


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_put_get_roundtrip_with_headers(client, ns):
    body = b"hello world\n"
    reply = client.put(
        ns + "/obj",
        user="alice",
        data=body,
        headers={
            "Content-Type": "text/plain",
            "Content-MD5": b64(hashlib.md5(body).digest()),
            "Content-Disposition": "filename*=UTF-8''hello%20world.txt",
        },
    )
    assert reply.status == 201
    location = reply.headers["Location"]
    assert location.startswith(ns + "/obj:")
    assert reply.text == location + "\n"
    got = client.get(ns + "/obj", user="alice")
    assert got.status == 200
    assert got.body == body
    assert got.headers["Content-Type"] == "text/plain"
    assert got.headers["Content-Length"] == str(len(body))
    assert got.headers["Content-MD5"] == b64(hashlib.md5(body).digest())
    assert got.headers["Content-SHA256"] == b64(hashlib.sha256(body).digest())
    assert got.headers["Content-Disposition"] == "filename*=UTF-8''hello%20world.txt"
    assert got.headers["Content-Location"] == location
    assert got.headers["Accept-Ranges"] == "bytes"
    assert got.headers["ETag"].startswith('"')
    assert "Last-Modified" in got.headers
    head = client.head(ns + "/obj", user="alice")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["Content-Length"] == str(len(body))
    assert head.headers["Content-Location"] == location
    assert head.headers["Content-MD5"] == got.headers["Content-MD5"]
    version = client.get(location, user="alice")
    assert version.body == body
    assert version.headers["ETag"] == got.headers["ETag"]


def test_versions_are_immutable_and_listed_newest_first(client, ns):
    first = client.put(ns + "/obj", user="alice", data=b"one").headers["Location"]
    second = client.put(ns + "/obj", user="alice", data=b"two").headers["Location"]
    assert first != second
    assert client.get(first, user="alice").body == b"one"
    assert client.get(second, user="alice").body == b"two"
    assert client.get(ns + "/obj", user="alice").body == b"two"
    listing = client.get(ns + "/obj;versions", user="alice")
    assert listing.json() == [second, first]
    uris = client.get(ns + "/obj;versions", user="alice", headers={"Accept": "text/uri-list"})
    assert uris.text == f"{second}\n{first}\n"


def test_default_content_type(client, ns):
    client.put(ns + "/obj", user="alice", data=b"x")
    assert client.get(ns + "/obj", user="alice").headers["Content-Type"] == (
        "application/octet-stream"
    )


def test_delete_current_version_makes_previous_current(client, ns):
    first = client.put(ns + "/obj", user="alice", data=b"one").headers["Location"]
    second = client.put(ns + "/obj", user="alice", data=b"two").headers["Location"]
    assert client.delete(second, user="alice").status == 204
    assert client.get(second, user="alice").status == 404
    assert client.get(ns + "/obj", user="alice").body == b"one"
    assert client.delete(first, user="alice").status == 204
    assert client.get(ns + "/obj", user="alice").status == 409
    assert client.get(ns + "/obj;versions", user="alice").json() == []
    # the object still exists: a new version can be added
    third = client.put(ns + "/obj", user="alice", data=b"three")
    assert third.status == 201
    assert third.headers["Location"] not in (first, second)


def test_delete_object_removes_versions_and_keeps_tombstone(client, ns, app):
    location = client.put(ns + "/obj", user="alice", data=b"one").headers["Location"]
    state = app.extensions["hatrac"]
    storage = state.storage
    name, version = location.split("/hatrac", 1)[1].rsplit(":", 1)
    found = state.directory.run(lambda tx: tx.get_version(tx.get_name(name).id, version))
    key = found.storage_key  # inline (in the database) or in the backend: both go
    assert storage.exists(key)
    assert client.delete(ns + "/obj", user="alice").status == 204
    assert client.get(ns + "/obj", user="alice").status == 404
    assert client.get(location, user="alice").status == 404
    assert not storage.exists(key)
    assert client.put(ns + "/obj", user="alice", data=b"again").status == 409


def test_unknown_version_is_404(client, ns):
    client.put(ns + "/obj", user="alice", data=b"one")
    assert client.get(ns + "/obj:NOSUCHVERSION", user="alice").status == 404
    assert client.delete(ns + "/obj:NOSUCHVERSION", user="alice").status == 404


def test_put_on_version_is_405(client, ns):
    location = client.put(ns + "/obj", user="alice", data=b"one").headers["Location"]
    reply = client.put(location, user="alice", data=b"two")
    assert reply.status == 405
    assert "GET" in reply.headers["Allow"]


def test_empty_object(client, ns):
    reply = client.put(ns + "/empty", user="alice", data=b"")
    assert reply.status == 201
    got = client.get(ns + "/empty", user="alice")
    assert got.body == b""
    assert got.headers["Content-MD5"] == b64(hashlib.md5(b"").digest())


def test_object_with_parents(client, ns):
    reply = client.put(ns + "/a/b/obj?parents=true", user="alice", data=b"x")
    assert reply.status == 201
    assert client.get(ns + "/a/b", user="alice").json() == [ns + "/a/b/obj"]
    assert client.put(ns + "/c/obj", user="alice", data=b"x").status == 404


@pytest.mark.parametrize(
    "header,value",
    [
        ("Content-MD5", "not base64!"),
        ("Content-MD5", base64.b64encode(b"short").decode()),
        ("Content-SHA256", "zz"),
        ("Content-SHA256", base64.b64encode(hashlib.md5(b"x").digest()).decode()),
    ],
)
def test_malformed_digests_are_400_and_store_nothing(client, ns, header, value):
    reply = client.put(ns + "/obj", user="alice", data=b"data", headers={header: value})
    assert reply.status == 400
    assert header in reply.text
    assert client.get(ns + "/obj", user="alice").status == 404
    assert client.get(ns, user="alice").json() == []


@pytest.mark.parametrize("header", ["Content-MD5", "Content-SHA256"])
def test_mismatched_digests_are_400_and_store_nothing(client, ns, app, header):
    wrong = hashlib.md5 if header == "Content-MD5" else hashlib.sha256
    reply = client.put(
        ns + "/obj", user="alice", data=b"data", headers={header: b64(wrong(b"other").digest())}
    )
    assert reply.status == 400
    assert "does not match" in reply.text
    assert client.get(ns + "/obj", user="alice").status == 404
    storage = app.extensions["hatrac"].storage
    if hasattr(storage, "tmp"):  # filesystem
        assert list(storage.tmp.iterdir()) == []
    assert list(storage.keys()) == []


def test_hex_digests_are_accepted_and_returned_as_base64(client, ns):
    body = b"data"
    reply = client.put(
        ns + "/obj",
        user="alice",
        data=body,
        headers={"Content-SHA256": hashlib.sha256(body).hexdigest()},
    )
    assert reply.status == 201
    head = client.head(ns + "/obj", user="alice")
    assert head.headers["Content-SHA256"] == b64(hashlib.sha256(body).digest())


@pytest.mark.parametrize(
    "value",
    [
        "attachment; filename=foo.txt",
        "filename*=UTF-8''a%2Fb",
        "filename*=UTF-8''",
        "filename*=UTF-8''..",
        "filename*=UTF-8''%FF%FE",
        "filename*=ISO-8859-1''abc",
        "filename*=UTF-8''a%00b",
    ],
)
def test_malformed_content_disposition_is_400(client, ns, value):
    reply = client.put(ns + "/obj", user="alice", data=b"x", headers={"Content-Disposition": value})
    assert reply.status == 400
    assert client.get(ns + "/obj", user="alice").status == 404


def test_get_namespace_name_with_version_is_404(client, ns):
    assert client.get(ns + ":VERSION", user="alice").status == 404


def test_get_object_as_namespace_listing_of_versions_on_namespace(client, ns):
    assert client.get(ns + ";versions", user="alice").status == 404  # as upstream


def test_unknown_query_parameters_are_ignored(client, ns):
    reply = client.put(ns + "/obj?cid=test&parents=false", user="alice", data=b"x")
    assert reply.status == 201
    assert client.get(ns + "/obj?cid=abc", user="alice").body == b"x"


def test_if_none_match_star_creates_only_once(client, ns):
    first = client.put(ns + "/obj", user="alice", data=b"1", headers={"If-None-Match": "*"})
    assert first.status == 201
    second = client.put(ns + "/obj", user="alice", data=b"2", headers={"If-None-Match": "*"})
    assert second.status == 412
    assert client.get(ns + "/obj", user="alice").body == b"1"


def test_if_match_guards_update_and_delete(client, ns):
    client.put(ns + "/obj", user="alice", data=b"1")
    etag = client.head(ns + "/obj", user="alice").headers["ETag"]
    assert (
        client.put(ns + "/obj", user="alice", data=b"2", headers={"If-Match": etag}).status == 201
    )
    assert (
        client.put(ns + "/obj", user="alice", data=b"3", headers={"If-Match": etag}).status == 412
    )
    assert client.delete(ns + "/obj", user="alice", headers={"If-Match": etag}).status == 412
    current = client.head(ns + "/obj", user="alice").headers["ETag"]
    assert client.delete(ns + "/obj", user="alice", headers={"If-Match": current}).status == 204


def test_get_conditionals(client, ns):
    client.put(ns + "/obj", user="alice", data=b"1")
    etag = client.head(ns + "/obj", user="alice").headers["ETag"]
    assert client.get(ns + "/obj", user="alice", headers={"If-None-Match": etag}).status == 304
    assert client.get(ns + "/obj", user="alice", headers={"If-Match": '"other"'}).status == 412
    assert client.get(ns + "/obj", user="alice", headers={"If-Match": etag}).status == 200


def test_large_range_before_the_end_is_exact(client, ns):
    """A range past the small-body size that ends before the end of the object:
    a server that reads the file wrapper (no sendfile) must stop at the range."""
    import os

    body = os.urandom(300 * 1024 + 3)
    assert client.put(ns + "/ranged", user="alice", data=body).status == 201
    for first, last in ((1000, 200_000), (0, 65 * 1024), (1, len(body) - 2)):
        part = client.get(ns + "/ranged", user="alice", headers={"Range": f"bytes={first}-{last}"})
        assert part.status == 206
        assert part.headers["Content-Length"] == str(last - first + 1)
        assert part.body == body[first : last + 1]

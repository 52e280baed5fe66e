"""Version metadata: ;metadata on versions and on objects (their current version)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from clients import FlaskProtocolClient

import hatrac
from hatrac.model.client import Client


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture
def version(client, ns) -> str:
    reply = client.put(
        ns + "/obj", user="alice", data=b"data", headers={"Content-Type": "text/plain"}
    )
    assert reply.status == 201
    return reply.headers["Location"]


def test_get_collection_and_fields(client, ns, version):
    for url in (version + ";metadata", ns + "/obj;metadata", version + ";metadata/"):
        reply = client.get(url, user="alice")
        assert reply.status == 200, (url, reply.text)
        assert reply.headers["Content-Type"].startswith("application/json")
        assert reply.json() == {
            "content-type": "text/plain",
            "content-md5": b64md5(b"data"),
            "content-sha256": b64sha256(b"data"),
        }
        assert reply.headers["ETag"]
    field = client.get(version + ";metadata/content-type", user="alice")
    assert field.status == 200
    assert field.headers["Content-Type"].startswith("text/plain")
    assert field.text.strip() == "text/plain"
    assert client.get(version + ";metadata/content-disposition", user="alice").status == 404
    assert client.get(version + ";metadata/nonsense", user="alice").status == 404
    assert client.get(version + ";metadata/a/b", user="alice").status == 400
    etag = client.get(version + ";metadata", user="alice").headers["ETag"]
    assert (
        client.get(version + ";metadata", user="alice", headers={"If-None-Match": etag}).status
        == 304
    )


def test_change_mutable_fields(client, ns, version):
    meta = version + ";metadata"
    etag = client.get(meta, user="alice").headers["ETag"]
    reply = client.put(meta + "/content-type", user="alice", data="application/x-thing\n")
    assert reply.status == 204
    assert reply.headers["ETag"] != etag
    assert client.get(version, user="alice").headers["Content-Type"] == "application/x-thing"
    disposition = "filename*=UTF-8''r%C3%A9sum%C3%A9.txt"
    assert client.put(meta + "/content-disposition", user="alice", data=disposition).status == 204
    assert client.get(ns + "/obj", user="alice").headers["Content-Disposition"] == disposition
    assert client.put(meta + "/content-disposition", user="alice", data="inline").status == 400
    bad_name = "filename*=UTF-8''a%2Fb"
    assert client.put(meta + "/content-disposition", user="alice", data=bad_name).status == 400
    assert client.delete(meta + "/content-disposition", user="alice").status == 204
    # none stored: the object's name, as upstream
    assert (
        client.get(version, user="alice").headers["Content-Disposition"] == "filename*=UTF-8''obj"
    )
    assert client.delete(ns + "/obj;metadata/content-type", user="alice").status == 204
    assert "content-type" not in client.get(meta, user="alice").json()
    assert client.put(meta + "/content-type", user="alice", data="").status == 400
    assert client.put(meta, user="alice", data="x").status == 405
    assert client.delete(meta, user="alice").status == 405


def test_if_match(client, version):
    meta = version + ";metadata"
    etag = client.get(meta, user="alice").headers["ETag"]
    stale = '"nope"'
    reply = client.put(
        meta + "/content-type", user="alice", data="a/b", headers={"If-Match": stale}
    )
    assert reply.status == 412
    reply = client.put(meta + "/content-type", user="alice", data="a/b", headers={"If-Match": etag})
    assert reply.status == 204
    reply = client.put(meta + "/content-type", user="alice", data="c/d", headers={"If-Match": etag})
    assert reply.status == 412


def test_digests_can_be_added_but_never_changed(client, ns, app):
    # a version without digests, as an older service (or an import) would leave it
    reply = client.put(ns + "/obj", user="alice", data=b"data")
    version = reply.headers["Location"]
    state = app.extensions["hatrac"]
    _, found = state.model.get_version(Client("alice"), ns[len("/hatrac") :] + "/obj")
    for field in ("content-md5", "content-sha256"):
        state.directory.run(
            lambda tx, field=field: tx.set_version_metadata(found.id, field, None), write=True
        )
    meta = version + ";metadata"
    assert client.get(meta, user="alice").json() == {}
    assert client.put(meta + "/content-md5", user="alice", data=b64md5(b"other")).status == 409
    assert client.put(meta + "/content-md5", user="alice", data="garbage").status == 400
    assert client.put(meta + "/content-md5", user="alice", data=b64md5(b"data")).status == 204
    hex_sha = hashlib.sha256(b"data").hexdigest()
    assert client.put(meta + "/content-sha256", user="alice", data=hex_sha).status == 204
    assert client.get(version, user="alice").headers["Content-SHA256"] == b64sha256(b"data")
    # same value again is fine; a different one or a removal is a conflict
    assert client.put(meta + "/content-md5", user="alice", data=b64md5(b"data")).status == 204
    assert client.put(meta + "/content-md5", user="alice", data=b64md5(b"x")).status == 409
    assert client.delete(meta + "/content-md5", user="alice").status == 409


def test_rights(client, ns, version):
    meta = version + ";metadata"
    assert client.get(meta).status == 401
    assert client.get(meta, user="bob").status == 403
    assert client.put(ns + "/obj;acl/read", user="alice", json=["*"]).status == 204
    assert client.get(meta).status == 401  # an object's read lists versions only
    assert client.put(ns + "/obj;acl/subtree-read", user="alice", json=["*"]).status == 204
    assert client.get(meta).status == 200
    assert client.put(meta + "/content-type", user="bob", data="a/b").status == 403
    assert client.put(meta + "/content-type", data="a/b").status == 401
    assert client.delete(meta + "/content-type", user="bob").status == 403
    # without read rights: nothing readable
    assert client.mkdir(ns + "/private").status == 201
    assert client.put(ns + "/private;acl/read", user="alice", json=[]).status == 204
    private = client.put(ns + "/private/obj", user="alice", data=b"x").headers["Location"]
    assert client.get(private + ";metadata", user="bob").status in (403, 404)


def test_firewall(make_config):
    config = make_config(firewall_acls={"manage_metadata": ["admin"]})
    app = hatrac.create_app(config)
    try:
        client = FlaskProtocolClient(app)
        assert client.mkdir("/hatrac/fw", user="alice").status == 201
        version = client.put("/hatrac/fw/obj", user="alice", data=b"x").headers["Location"]
        reply = client.put(version + ";metadata/content-type", user="alice", data="a/b")
        assert reply.status == 403
    finally:
        app.extensions["hatrac"].close()


def test_metadata_of_namespace_or_missing(client, ns, version):
    assert client.get(ns + ";metadata", user="alice").status == 409
    assert client.get(ns + "/missing;metadata", user="alice").status == 404
    assert client.get(ns + "/obj:NOPE;metadata", user="alice").status == 404
    assert client.mkdir(ns + "/empty").status == 201

"""ACL sub-resources and the rights they grant (namespaces, objects, versions)."""

from __future__ import annotations

import json

import pytest

NS = {"Content-Type": "application/x-hatrac-namespace"}
NAMESPACE_MODES = [
    "owner",
    "create",
    "read",
    "subtree-owner",
    "subtree-create",
    "subtree-update",
    "subtree-read",
]


def test_acl_documents_per_kind(client, ns):
    location = client.put(ns + "/obj", user="alice", data=b"x").headers["Location"]
    namespace = client.get(ns + ";acl", user="alice")
    assert namespace.status == 200
    assert list(namespace.json()) == NAMESPACE_MODES
    assert namespace.json()["owner"] == ["alice"]
    obj = client.get(ns + "/obj;acl", user="alice").json()
    assert list(obj) == ["owner", "update", "read", "subtree-owner", "subtree-read"]
    version = client.get(location + ";acl", user="alice").json()
    assert list(version) == ["owner", "read"]
    assert version["owner"] == ["alice"]
    assert client.get(ns + ";acl/", user="alice").json() == namespace.json()


def test_single_acl_and_entry(client, ns):
    assert client.get(ns + ";acl/owner", user="alice").json() == ["alice"]
    entry = client.get(ns + ";acl/owner/alice", user="alice")
    assert entry.status == 200
    assert entry.text.strip() == "alice"
    assert client.get(ns + ";acl/owner/bob", user="alice").status == 404
    assert client.get(ns + ";acl/update", user="alice").status == 400  # not a namespace mode


def test_put_replace_add_delete(client, ns):
    assert client.put(ns + ";acl/read", user="alice", json=["bob", "carol"]).status == 204
    assert client.get(ns + ";acl/read", user="alice").json() == ["bob", "carol"]
    # add one entry: DERIVA sends Content-Type application/json with no body
    reply = client.put(
        ns + ";acl/read/dave",
        user="alice",
        headers={"Content-Type": "application/json", "Content-Length": "0"},
    )
    assert reply.status == 204
    assert client.get(ns + ";acl/read", user="alice").json() == ["bob", "carol", "dave"]
    assert client.delete(ns + ";acl/read/bob", user="alice").status == 204
    assert client.delete(ns + ";acl/read/bob", user="alice").status == 404
    assert client.get(ns + ";acl/read", user="alice").json() == ["carol", "dave"]
    assert client.delete(ns + ";acl/read", user="alice").status == 204
    assert client.get(ns + ";acl/read", user="alice").json() == []


def test_encoded_roles(client, ns):
    role = "https://auth.example.org/groups/lab:1"
    encoded = "https%3A%2F%2Fauth.example.org%2Fgroups%2Flab%3A1"
    assert client.put(ns + ";acl/read/" + encoded, user="alice").status == 204
    assert client.get(ns + ";acl/read", user="alice").json() == [role]
    assert client.get(ns + ";acl/read/" + encoded, user="alice").status == 200
    assert client.put(ns + ";acl/read/%2A", user="alice").status == 204
    assert "*" in client.get(ns + ";acl/read", user="alice").json()


@pytest.mark.parametrize("body", [b"not json", b'{"a": 1}', b"[1, 2]", b'[""]', b"\xff\xfe"])
def test_malformed_acl_body_is_400(client, ns, body):
    reply = client.put(ns + ";acl/read", user="alice", data=body)
    assert reply.status == 400
    assert client.get(ns + ";acl/read", user="alice").json() == []


def test_acls_need_ownership(client, ns):
    assert client.get(ns + ";acl", user="bob").status == 403
    assert client.get(ns + ";acl").status == 401
    assert client.put(ns + ";acl/read/bob", user="bob").status == 403
    assert client.put(ns + ";acl/read/bob").status == 401


def test_refuse_leaving_no_owner(client, ns):
    """400, as the DERIVA CLI reads a refused ACL change ("cannot be updated as requested")."""
    reply = client.delete(ns + ";acl/owner", user="alice")
    assert reply.status == 400
    assert "without any owner" in reply.text
    assert client.get(ns + ";acl/owner", user="alice").json() == ["alice"]
    assert client.put(ns + ";acl/owner", user="alice", json=[]).status == 400
    assert client.delete(ns + ";acl/owner/alice", user="alice").status == 400
    # handing ownership over is fine
    assert client.put(ns + ";acl/owner", user="alice", json=["bob"]).status == 204
    assert client.get(ns + ";acl/owner", user="bob").json() == ["bob"]
    assert client.get(ns + ";acl", user="alice").status == 403


def test_owner_can_be_cleared_under_a_subtree_owner(client, ns):
    client.put(ns + ";acl/subtree-owner/alice", user="alice")
    client.put(ns + "/sub", user="alice", headers=NS)
    assert client.delete(ns + "/sub;acl/owner", user="alice").status == 204


def test_acl_etags_and_if_match(client, ns):
    first = client.get(ns + ";acl", user="alice")
    etag = first.headers["ETag"]
    stale = client.put(ns + ";acl/read/bob", user="alice", headers={"If-Match": '"stale"'})
    assert stale.status == 412
    ok = client.put(ns + ";acl/read/bob", user="alice", headers={"If-Match": etag})
    assert ok.status == 204
    assert (
        client.put(ns + ";acl/read/carol", user="alice", headers={"If-Match": etag}).status == 412
    )
    assert client.get(ns + ";acl", user="alice", headers={"If-None-Match": etag}).status == 200
    current = client.get(ns + ";acl", user="alice").headers["ETag"]
    assert client.get(ns + ";acl", user="alice", headers={"If-None-Match": current}).status == 304


def test_version_acl_changes(client, ns):
    location = client.put(ns + "/obj", user="alice", data=b"x").headers["Location"]
    assert client.get(location, user="bob").status == 403
    assert client.put(location + ";acl/read/bob", user="alice").status == 204
    assert client.get(location, user="bob").status == 200
    assert client.get(location + ";acl/read", user="alice").json() == ["bob"]
    assert client.get(location + ";acl/update", user="alice").status == 400


# -- rights ------------------------------------------------------------------------
def test_read_rights(client, ns):
    client.put(ns + "/sub", user="alice", headers=NS)
    client.put(ns + "/sub/obj", user="alice", data=b"secret")
    assert client.get(ns + "/sub", user="bob").status == 403
    assert client.get(ns + "/sub/obj", user="bob").status == 403
    assert client.get(ns + "/sub/obj").status == 401
    client.put(ns + ";acl/subtree-read/bob", user="alice")
    assert client.get(ns + "/sub", user="bob").status == 200
    assert client.get(ns + "/sub/obj", user="bob").body == b"secret"
    assert client.get(ns + "/sub/obj;versions", user="bob").status == 200
    assert client.get(ns + "/sub/obj", user="carol").status == 403


def test_object_read_lists_versions_subtree_read_reads_them(client, ns):
    # upstream's meaning: an object's read is the versions listing only
    client.put(ns + "/obj", user="alice", data=b"one")
    client.put(ns + "/obj;acl/read/bob", user="alice")
    client.put(ns + "/obj", user="alice", data=b"two")
    assert client.get(ns + "/obj;versions", user="bob").status == 200
    assert client.get(ns + "/obj", user="bob").status == 403
    client.put(ns + "/obj;acl/subtree-read/carol", user="alice")
    assert client.get(ns + "/obj", user="carol").body == b"two"
    assert client.get(ns + "/obj;versions", user="carol").status == 403


def test_group_roles(client, ns):
    client.put(ns + "/obj", user="alice", data=b"x")
    client.put(ns + "/obj;acl/subtree-read/lab", user="alice")
    assert client.get(ns + "/obj", user="bob").status == 403
    assert client.get(ns + "/obj", user="bob", groups=("lab",)).status == 200


def test_star_means_everyone(client, ns):
    client.put(ns + "/obj", user="alice", data=b"public")
    client.put(ns + "/obj;acl/subtree-read/%2A", user="alice")
    assert client.get(ns + "/obj").body == b"public"


def test_create_rights(client, ns):
    assert client.put(ns + "/x", user="bob", data=b"x").status == 403
    assert client.put(ns + "/x", data=b"x").status == 401
    client.put(ns + ";acl/create/bob", user="alice")
    assert client.put(ns + "/x", user="bob", data=b"x").status == 201
    assert client.get(ns + "/x;acl/owner", user="bob").json() == ["bob"]
    # create on ns does not reach into sub-namespaces; subtree-create does
    client.put(ns + "/sub", user="alice", headers=NS)
    assert client.put(ns + "/sub/y", user="bob", data=b"y").status == 403
    client.put(ns + ";acl/subtree-create/bob", user="alice")
    assert client.put(ns + "/sub/y", user="bob", data=b"y").status == 201


def test_update_rights(client, ns):
    client.put(ns + "/obj", user="alice", data=b"1")
    assert client.put(ns + "/obj", user="bob", data=b"2").status == 403
    client.put(ns + "/obj;acl/update/bob", user="alice")
    assert client.put(ns + "/obj", user="bob", data=b"2").status == 201
    client.put(ns + "/other", user="alice", data=b"1")
    assert client.put(ns + "/other", user="carol", data=b"2").status == 403
    client.put(ns + ";acl/subtree-update/carol", user="alice")
    assert client.put(ns + "/other", user="carol", data=b"2").status == 201
    # update does not grant create
    assert client.put(ns + "/brand-new", user="carol", data=b"2").status == 403


def test_delete_needs_ownership(client, ns):
    location = client.put(ns + "/obj", user="alice", data=b"1").headers["Location"]
    client.put(ns + "/obj;acl/update/bob", user="alice")
    client.put(ns + "/obj;acl/read/bob", user="alice")
    assert client.delete(location, user="bob").status == 403
    assert client.delete(ns + "/obj", user="bob").status == 403
    client.put(ns + ";acl/subtree-owner/bob", user="alice")
    assert client.delete(location, user="bob").status == 204


def test_existence_is_not_leaked(client, ns):
    """Without read on the parent, missing and forbidden children look the same."""
    client.put(ns + "/private", user="alice", headers=NS)
    client.put(ns + "/private/obj", user="alice", data=b"x")
    existing = client.get(ns + "/private/obj", user="bob")
    missing = client.get(ns + "/private/nothing", user="bob")
    assert existing.status == missing.status == 403
    assert client.get(ns + "/private/nothing").status == 401
    # with read on the parent, a missing child is 404
    client.put(ns + "/private;acl/read/bob", user="alice")
    assert client.get(ns + "/private/nothing", user="bob").status == 404


def test_firewall_acls(make_config):
    from clients import FlaskProtocolClient

    import hatrac

    app = hatrac.create_app(make_config(firewall_acls={"create": ["staff"]}))
    client = FlaskProtocolClient(app)
    assert client.mkdir("/hatrac/fw", user="alice").status == 403
    assert client.put("/hatrac/fw", user="alice", groups=("staff",), headers=NS).status == 201
    app.extensions["hatrac"].close()


def test_read_only_service(make_config):
    from clients import FlaskProtocolClient

    import hatrac

    app = hatrac.create_app(make_config(read_only=True))
    client = FlaskProtocolClient(app)
    assert client.mkdir("/hatrac/ro", user="admin").status == 403
    assert client.get("/hatrac/", user="admin").status == 200
    assert client.put("/hatrac/;acl/read/bob", user="admin").status == 403
    app.extensions["hatrac"].close()


def test_acl_json_body_roundtrip(client, ns):
    roles = ["https://x.org/a", "b", "*"]
    assert client.put(ns + ";acl/subtree-read", user="alice", data=json.dumps(roles)).status == 204
    assert client.get(ns + ";acl/subtree-read", user="alice").json() == roles


def test_the_acl_set_itself_is_read_only(client, ns):
    # changed one access mode at a time (;acl/ACCESS), as upstream: 405 with an
    # Allow that says what the resource takes, for every method it does not
    for method in ("PUT", "DELETE", "POST"):
        reply = client.request(method, ns + ";acl", user="alice", json={"owner": ["x"]})
        assert reply.status == 405, method
        assert reply.headers["Allow"] == "GET, HEAD"
    assert client.get(ns + ";acl", user="alice").json()["owner"] == ["alice"]  # unchanged
    # the access modes still take PUT and DELETE, and say so
    reply = client.request("POST", ns + ";acl/read", user="alice")
    assert reply.status == 405
    assert reply.headers["Allow"] == "DELETE, GET, HEAD, PUT"

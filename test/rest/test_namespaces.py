"""Namespaces: create, list (JSON, uri-list, HTML), delete, parents, conflicts."""

from __future__ import annotations

import json
from urllib.parse import quote

from hatrac.rest import render

NS = {"Content-Type": "application/x-hatrac-namespace"}


def test_root_lists_as_json(client):
    reply = client.get("/hatrac/")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert isinstance(reply.json(), list)
    assert client.get("/hatrac").status == 200


def test_create_and_list(client, ns):
    reply = client.put(ns + "/sub", user="alice", headers=NS)
    assert reply.status == 201
    assert reply.headers["Location"] == ns + "/sub"
    assert reply.text == ns + "/sub\n"
    assert reply.headers["Content-Type"].startswith("text/uri-list")
    listing = client.get(ns, user="alice")
    assert listing.json() == [ns + "/sub"]


def test_listing_negotiation(client, ns):
    client.put(ns + "/a", user="alice", headers=NS)
    client.put(ns + "/b", user="alice", data=b"x")
    uris = client.get(ns, user="alice", headers={"Accept": "text/uri-list"})
    assert uris.headers["Content-Type"].startswith("text/uri-list")
    assert uris.text == f"{ns}/a\n{ns}/b\n"
    page = client.get(ns, user="alice", headers={"Accept": "text/html"})
    assert page.headers["Content-Type"].startswith("text/html")
    assert f'href="{ns}/a"' in page.text
    default = client.get(ns, user="alice", headers={"Accept": "*/*"})
    assert default.json() == [ns + "/a", ns + "/b"]


def test_listing_etag_and_304(client, ns):
    first = client.get(ns, user="alice")
    etag = first.headers["ETag"]
    again = client.get(ns, user="alice", headers={"If-None-Match": etag})
    assert again.status == 304
    client.put(ns + "/c", user="alice", headers=NS)
    changed = client.get(ns, user="alice", headers={"If-None-Match": etag})
    assert changed.status == 200
    assert changed.headers["ETag"] != etag


def test_head_namespace(client, ns):
    reply = client.head(ns, user="alice")
    assert reply.status == 200
    assert reply.body == b""


def test_missing_parent_is_404_without_parents(client, ns):
    reply = client.put(ns + "/x/y", user="alice", headers=NS)
    assert reply.status == 404
    assert "parents" in reply.text


def test_parents_true_creates_ancestors(client, ns):
    reply = client.put(ns + "/x/y/z?parents=true", user="alice", headers=NS)
    assert reply.status == 201
    assert client.get(ns + "/x/y", user="alice").json() == [ns + "/x/y/z"]
    acl = client.get(ns + "/x;acl/owner", user="alice").json()
    assert acl == ["alice"]


def test_existing_namespace_is_409(client, ns):
    assert client.put(ns + "/d", user="alice", headers=NS).status == 201
    assert client.put(ns + "/d", user="alice", headers=NS).status == 409


def test_namespace_put_honours_preconditions(client, ns):
    """If-Match / If-None-Match on a namespace PUT, as on an object PUT: 412 when unmet,
    checked before the 409 of a name that exists."""

    def put(name, condition, user="alice"):
        return client.put(name, user=user, headers={**NS, **condition}).status

    assert put(ns + "/d", {"If-Match": "*"}) == 412  # nothing there to match
    assert client.get(ns + "/d", user="alice").status == 404
    assert put(ns + "/d?parents=true", {"If-Match": '"x"'}) == 412
    assert put(ns + "/d", {"If-None-Match": "*"}) == 201
    assert put(ns + "/d", {"If-None-Match": "*"}) == 412
    etag = client.get(ns + "/d", user="alice").headers["ETag"]
    assert put(ns + "/d", {"If-None-Match": etag}) == 412
    assert put(ns + "/d", {"If-Match": '"other"'}) == 412
    # conditions that hold on an existing namespace: the 409 of any PUT on it
    assert put(ns + "/d", {"If-Match": etag}) == 409
    assert put(ns + "/d", {"If-Match": "*"}) == 409
    assert put(ns + "/d", {"If-None-Match": '"other"'}) == 409
    # a client that sees the name but may not list the namespace: its ETag is not
    # bob's to test, only its existence
    client.put(ns + ";acl/read/bob", user="alice")
    assert put(ns + "/d", {"If-Match": etag}, user="bob") == 412
    assert put(ns + "/d", {"If-Match": "*"}, user="bob") == 409
    assert put(ns + "/d", {"If-None-Match": "*"}, user="bob") == 412
    # a deleted name stays a 409, as for objects
    assert client.delete(ns + "/d", user="alice").status == 204
    assert put(ns + "/d", {"If-None-Match": "*"}) == 409


def test_namespace_under_object_is_409(client, ns):
    client.put(ns + "/obj", user="alice", data=b"bytes")
    assert client.put(ns + "/obj/child", user="alice", headers=NS).status == 409
    assert client.put(ns + "/obj/child?parents=true", user="alice", data=b"x").status == 409


def test_namespace_over_object_updates_object(client, ns):
    """A PUT on an existing object updates it, whatever its Content-Type."""
    client.put(ns + "/obj", user="alice", data=b"one")
    reply = client.put(ns + "/obj", user="alice", headers=NS, data=b"two")
    assert reply.status == 201
    assert ":" in reply.headers["Location"]
    assert client.get(ns + "/obj", user="alice").body == b"two"


def test_object_over_namespace_is_409(client, ns):
    client.put(ns + "/d", user="alice", headers=NS)
    reply = client.put(ns + "/d", user="alice", data=b"x", headers={"Content-Type": "text/plain"})
    assert reply.status == 409


def test_delete_namespace_recursively(client, ns):
    client.put(ns + "/a/b/c?parents=true", user="alice", headers=NS)
    client.put(ns + "/a/b/obj", user="alice", data=b"data")
    assert client.delete(ns + "/a", user="alice").status == 204
    assert client.get(ns + "/a", user="alice").status == 404
    assert client.get(ns + "/a/b/obj", user="alice").status == 404
    assert client.get(ns, user="alice").json() == []


def test_deleted_name_is_never_reused(client, ns):
    client.put(ns + "/gone", user="alice", headers=NS)
    assert client.delete(ns + "/gone", user="alice").status == 204
    assert client.put(ns + "/gone", user="alice", headers=NS).status == 409
    assert client.put(ns + "/gone", user="alice", data=b"x").status == 409
    assert client.put(ns + "/gone/child?parents=true", user="alice", data=b"x").status == 409


def test_put_of_the_root_is_409(client):
    """The root exists already: a PUT of it is a conflict (as upstream), for any client
    and either content type, not a malformed request."""
    for path in ("/hatrac/", "/hatrac"):
        for user in ("admin", "alice", None):
            made = client.put(path, user=user, headers=NS)
            assert made.status == 409, (path, user, made.text)
            assert "root" in made.text
            assert client.put(path, user=user, data=b"bytes").status == 409
            assert client.put(path + "?parents=true", user=user, headers=NS).status == 409
    # its conditions as those of any namespace PUT
    assert client.put("/hatrac/", user="admin", headers={**NS, "If-None-Match": "*"}).status == 412
    assert client.put("/hatrac/", user="admin", headers={**NS, "If-Match": "*"}).status == 409
    assert client.get("/hatrac/", user="admin").status == 200


def test_root_cannot_be_deleted(client):
    assert client.delete("/hatrac/", user="admin").status == 409


def test_recursive_delete_needs_rights_on_everything(client, ns):
    """Bob owns a sub-namespace, alice owns what is inside... and vice versa."""
    client.put(ns + ";acl/subtree-create/bob", user="alice")
    client.put(ns + "/bobs", user="bob", headers=NS)
    # alice is owner of ns, hence of everything beneath it through... nothing:
    # owner is not subtree-owner, so bob's namespace is not hers
    reply = client.delete(ns, user="alice")
    assert reply.status == 403
    assert client.get(ns + "/bobs", user="bob").status == 200
    client.put(ns + ";acl/subtree-owner/alice", user="alice")
    assert client.delete(ns, user="alice").status == 204


def test_json_listing_is_byte_for_byte_json_dumps():
    """The joined JSON of a listing equals json.dumps's, escapes included (its fallback)."""
    cases = [
        [],
        ["/a"],
        ["/ns/a", "/ns/b%20c", "/ns/%C3%A9", "/ns/~x_y-z.w"],
        ['/ns/q"uote'],
        ["/ns/back\\slash"],
        ["/ns/caf\u00e9", "/ns/ok"],
        ["/ns/tab\there"],
        ["/ns/del\x7f"],
        ["/ns/line\nbreak", "/ns/z"],
    ]
    for items in cases:
        for prefix in ("", "/hatrac"):
            expected = json.dumps([prefix + item for item in items])
            assert render.json_list(items, prefix) == expected, (items, prefix)
    assert render.json_list(["/a"], '/pre"fix') == json.dumps(['/pre"fix/a'])


def test_listing_of_names_needing_encoding_is_exact(client, ns):
    """Names that needed percent-encoding list exactly as json.dumps and the uri-list give them."""
    for segment in ("a b", "caf\u00e9", 'q"', "b\\s", "z"):
        reply = client.put(f"{ns}/{quote(segment, safe='')}", user="alice", data=b"x")
        assert reply.status == 201, reply.text
    names = sorted(
        f"{ns}/{quote(segment, safe='-_.~')}" for segment in ("a b", "caf\u00e9", 'q"', "b\\s", "z")
    )
    listing = client.get(ns, user="alice", headers={"Accept": "application/json"})
    assert listing.body == (json.dumps(names) + "\n").encode()
    uris = client.get(ns, user="alice", headers={"Accept": "text/uri-list"})
    assert uris.body == "".join(name + "\n" for name in names).encode()

"""After a rename the old object name forwards, as upstream; the same rename is idempotent."""

from __future__ import annotations

import pytest


def rename(client, target, source, user="alice", **fields):
    # source_name as DERIVA's rename_obj sends it: the name after the prefix /hatrac
    body = {"command": "rename_from", "source_name": source.removeprefix("/hatrac")}
    body.update(fields)
    return client.post(target, user=user, json=body)


@pytest.fixture
def renamed(client, ns):
    """/old with two versions renamed to /new; returns (old, new version URLs)."""
    client.put(ns + "/old", user="alice", data=b"one", headers={"Content-Type": "a/b"})
    client.put(ns + "/old", user="alice", data=b"two", headers={"Content-Type": "c/d"})
    reply = rename(client, ns + "/new", ns + "/old")
    assert reply.status == 201
    return ns + "/old", reply.text.splitlines()


def test_the_old_name_serves_the_current_version_where_it_went(client, ns, renamed):
    old, urls = renamed
    for method in (client.get, client.head):
        reply = method(old, user="alice")
        assert reply.status == 200
        assert reply.headers["Content-Location"] == reply.headers["Location"] == urls[-1]
        assert reply.headers["Content-Type"] == "c/d"
        assert reply.headers["Content-Disposition"] == "filename*=UTF-8''new"
    assert client.get(old, user="alice").body == b"two"
    part = client.get(old, user="alice", headers={"Range": "bytes=1-"})
    assert part.status == 206 and part.body == b"wo"
    assert client.get(old + ";metadata/content-type", user="alice").text.strip() == "c/d"
    listed = client.get(old + ";versions", user="alice").json()
    assert len(listed) == 2 and all(url.startswith(old + ":") for url in listed)
    # as upstream, a renamed version keeps its id
    assert [u.rsplit(":", 1)[1] for u in listed] == [u.rsplit(":", 1)[1] for u in urls[::-1]]
    for url in listed:  # each listed version still forwards
        reply = client.get(url, user="alice")
        assert reply.status == 200 and reply.headers["Location"] in urls


def test_through_a_chain_the_old_name_names_the_last(client, ns, renamed):
    old, _ = renamed
    last = rename(client, ns + "/newer", ns + "/new").text.splitlines()
    reply = client.get(old, user="alice")
    assert reply.body == b"two"
    assert reply.headers["Content-Location"] == last[-1]


def test_others_get_401_or_403_never_409(client, ns, renamed):
    old, urls = renamed
    assert client.put(ns + ";acl/read", user="alice", json=[]).status == 204
    assert client.get(old).status == 401
    assert client.get(old, user="bob").status == 403
    assert client.delete(urls[-1], user="alice").status == 204  # the target is gone
    assert client.get(old).status == 401
    assert client.get(old, user="alice").status == 409  # for those who may know


def test_the_same_rename_again_is_204(client, ns, renamed):
    old, urls = renamed
    assert rename(client, ns + "/new", old).status == 204
    versions = [url.rsplit(":", 1)[1] for url in client.get(old + ";versions", user="alice").json()]
    assert rename(client, ns + "/new", old, source_versions=versions).status == 204
    assert client.get(ns + "/new;versions", user="alice").json() == urls[::-1]
    # elsewhere is not the same rename
    assert rename(client, ns + "/other", old).status == 409
    assert rename(client, ns + "/other", old, versions=versions).status == 409


def test_put_and_delete_on_the_old_name(client, ns, renamed):
    old, urls = renamed
    assert client.put(old, user="alice", data=b"three").status == 201
    reply = client.get(old, user="alice")
    assert reply.body == b"three" and "Location" not in reply.headers
    assert client.delete(old, user="alice").status == 204
    assert client.get(urls[-1], user="alice").body == b"two"

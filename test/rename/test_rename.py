"""Rename (rename_from): metadata-only moves, forwarders, deletion rules, rights."""

from __future__ import annotations

import pytest


def rename(client, target, source, user="alice", **fields):
    # source_name as DERIVA's rename_obj sends it: the name after the prefix /hatrac
    body = {"command": "rename_from", "source_name": source.removeprefix("/hatrac")}
    body.update(fields)
    return client.post(target, user=user, json=body)


@pytest.fixture
def source(client, ns):
    first = client.put(ns + "/old", user="alice", data=b"one", headers={"Content-Type": "a/b"})
    second = client.put(ns + "/old", user="alice", data=b"two")
    assert first.status == second.status == 201
    return ns + "/old", first.headers["Location"], second.headers["Location"]


def storage_keys(app):
    directory = app.extensions["hatrac"].directory
    return directory.run(lambda tx: tx.all_storage_keys())


def test_rename_all_versions(client, ns, source, app):
    old, first, second = source
    keys_before = storage_keys(app)
    reply = rename(client, ns + "/new", old)
    assert reply.status == 201, reply.text
    urls = reply.text.splitlines()
    assert reply.text == "".join(u + "\n" for u in urls)
    assert len(urls) == 2 and all(u.startswith(ns + "/new:") for u in urls)
    # same bytes, same metadata, newest is current
    assert client.get(ns + "/new", user="alice").body == b"two"
    assert client.get(urls[0], user="alice").body == b"one"
    assert client.get(urls[0], user="alice").headers["Content-Type"] == "a/b"
    assert client.get(ns + "/new;versions", user="alice").json() == urls[::-1]
    # no bytes moved: the new versions share the old storage keys
    assert storage_keys(app) == keys_before
    # as upstream, the source keeps its versions, which forward; its name serves
    # the current one from where it went
    got = client.get(old, user="alice")
    assert got.status == 200 and got.body == b"two"
    assert got.headers["Content-Location"] == got.headers["Location"] == urls[1]
    assert client.get(old + ";versions", user="alice").json() == [second, first]
    moved = client.get(first, user="alice")  # served from where it went, as upstream
    assert moved.status == 200 and moved.body == b"one"
    assert moved.headers["Location"] == moved.headers["Content-Location"] == urls[0]
    head = client.head(second, user="alice")
    assert head.status == 200
    assert head.headers["Location"] == urls[1]
    assert head.headers["Content-Length"] == "3"


def test_deriva_and_upstream_version_fields(client, ns, source):
    old, first, second = source
    version = first.rsplit(":", 1)[1]
    reply = rename(client, ns + "/new", old, versions=[version])
    assert reply.status == 201, reply.text
    assert len(reply.text.splitlines()) == 1
    assert client.get(ns + "/new", user="alice").body == b"one"
    # the other version stays with the source and is now its current one
    assert client.get(old, user="alice").body == b"two"
    assert client.get(first, user="alice").headers["Location"].startswith(ns + "/new:")
    reply = rename(client, ns + "/new2", old, source_versions=[second.rsplit(":", 1)[1]])
    assert reply.status == 201


def test_rename_into_existing_object_and_copy_acls(client, ns, source):
    old, first, _ = source
    assert client.put(first + ";acl/read", user="alice", json=["carol"]).status == 204
    assert client.put(ns + "/target", user="alice", data=b"zero").status == 201
    reply = rename(client, ns + "/target", old, copy_acls=True)
    assert reply.status == 201
    new_first = reply.text.splitlines()[0]
    assert client.get(new_first + ";acl/read", user="alice").json() == ["carol"]
    assert len(client.get(ns + "/target;versions", user="alice").json()) == 3
    assert client.get(ns + "/target", user="alice").body == b"two"


def test_deleting_source_keeps_bytes(client, ns, source):
    old, first, _ = source
    urls = rename(client, ns + "/new", old).text.splitlines()
    assert client.delete(first, user="alice").status == 204  # drops the forwarder
    assert client.get(urls[0], user="alice").body == b"one"
    assert client.delete(old, user="alice").status == 204
    assert client.get(ns + "/new", user="alice").body == b"two"
    assert client.get(urls[0], user="alice").body == b"one"


def test_deleting_target_frees_bytes_and_source_answers_409(client, ns, source, app):
    old, first, second = source
    urls = rename(client, ns + "/new", old).text.splitlines()
    assert client.delete(urls[0], user="alice").status == 204
    assert client.get(first, user="alice").status == 409
    assert client.head(first, user="alice").status == 409
    assert client.delete(ns + "/new", user="alice").status == 204
    assert client.get(second, user="alice").status == 409
    # forwarders keep no bytes alive: the orphan sweep may remove what they name
    assert storage_keys(app) == set()
    storage = app.extensions["hatrac"].storage
    objects = getattr(storage, "objects", None)
    if objects is not None:
        assert list(objects.glob("*/*/*")) == []


def test_rename_bad_inputs(client, ns, source):
    old, first, _ = source
    # a missing source object (or a namespace)
    assert rename(client, ns + "/new", ns + "/missing").status == 409
    client.mkdir(ns + "/dir")
    assert rename(client, ns + "/new", ns + "/dir").status == 409
    # to an existing namespace, or to itself
    assert rename(client, ns + "/dir", old).status == 409
    assert rename(client, old, old).status == 400
    # unknown versions: nothing renamed
    assert rename(client, ns + "/new", old, versions=["NOPE"]).status == 409
    assert client.get(ns + "/new", user="alice").status == 404
    assert client.get(old, user="alice").body == b"two"
    # malformed requests
    assert client.post(ns + "/new", user="alice", data=b"nope").status == 400
    assert client.post(ns + "/new", user="alice", json={"command": "copy"}).status == 400
    assert client.post(ns + "/new", user="alice", json={"command": "rename_from"}).status == 400
    assert rename(client, ns + "/new", old, versions="x").status == 400
    assert rename(client, ns + "/new", old, copy_acls="yes").status == 400
    assert rename(client, ns + "/new", old, extra=1).status == 400
    assert rename(client, ns + "/new", old + ":V").status == 400
    assert rename(client, ns + "/new", "relative").status == 400
    assert client.post(first, user="alice", json={"command": "rename_from"}).status == 405
    # renamed versions cannot be renamed again from the old name
    assert rename(client, ns + "/new", old).status == 201
    assert rename(client, ns + "/new3", old).status == 409


def test_rename_rights(client, ns, source):
    old, _, _ = source
    # bob does not own the source
    assert client.put(ns + ";acl/create", user="alice", json=["bob"]).status == 204
    assert rename(client, ns + "/bobs", old, user="bob").status == 403
    assert rename(client, ns + "/anon", old, user=None).status == 401
    # carol owns the source object but may not create in the target namespace
    assert client.put(old + ";acl/owner", user="alice", json=["alice", "carol"]).status == 204
    client.mkdir(ns + "/closed")
    assert rename(client, ns + "/closed/x", old, user="carol").status == 403
    assert client.get(old, user="alice").body == b"two"


def test_chained_renames(client, ns, source):
    old, first, _ = source
    middle = rename(client, ns + "/b", old).text.splitlines()
    final = rename(client, ns + "/c", ns + "/b").text.splitlines()
    # each forwarder names the end of the chain, as upstream
    assert client.get(first, user="alice").headers["Location"] == final[0]
    assert client.get(middle[0], user="alice").headers["Location"] == final[0]
    assert client.get(final[0], user="alice").body == b"one"

"""The whole ACL table of docs/acls.md, cell by cell, on both databases.

One role (``r``) is put on one ACL of a fresh namespace, object or version
(a *placement*); then ``r`` tries every operation, and each answer must be
allowed (2xx, or 303 for an S3 presigned redirect) or denied (403), as the
table says. Runs on SQLite and PostgreSQL with the filesystem, and on
PostgreSQL with S3 serving every GET by a presigned redirect, so the rules
hold wherever access is decided: GET/HEAD of objects and versions, ranges,
metadata, ACLs, listings and redirects.
"""

from __future__ import annotations

import itertools
import os

import pytest
from backends import BACKENDS, TEST_ROOT_ACLS
from clients import FlaskProtocolClient

import hatrac

_numbers = itertools.count()

# where the role is placed: (resource, access mode)
PLACEMENTS = [
    ("none", None),
    ("namespace", "owner"),
    ("namespace", "create"),
    ("namespace", "read"),
    ("namespace", "subtree-owner"),
    ("namespace", "subtree-create"),
    ("namespace", "subtree-update"),
    ("namespace", "subtree-read"),
    ("object", "owner"),
    ("object", "update"),
    ("object", "read"),
    ("object", "subtree-owner"),
    ("object", "subtree-read"),
    ("version", "owner"),
    ("version", "read"),
]

# what each right grants: operation -> the placements allowed to do it
READ_VERSIONS = {
    ("namespace", "subtree-owner"),
    ("namespace", "subtree-read"),
    ("object", "subtree-owner"),
    ("object", "subtree-read"),
    ("version", "owner"),
    ("version", "read"),
}
OWN_VERSION = {("namespace", "subtree-owner"), ("object", "subtree-owner"), ("version", "owner")}
EXPECTED = {
    "list namespace": {
        ("namespace", "owner"),
        ("namespace", "read"),
        ("namespace", "subtree-owner"),
        ("namespace", "subtree-read"),
    },
    "GET object": READ_VERSIONS,
    "HEAD object": READ_VERSIONS,
    "GET version": READ_VERSIONS,
    "HEAD version": READ_VERSIONS,
    "GET range": READ_VERSIONS,
    "GET object;metadata": READ_VERSIONS,
    "GET version;metadata/FIELD": READ_VERSIONS,
    "GET ;versions": {
        ("namespace", "subtree-owner"),
        ("namespace", "subtree-read"),
        ("object", "owner"),
        ("object", "read"),
    },
    "GET object;acl": {("namespace", "subtree-owner"), ("object", "owner")},
    "GET version;acl": OWN_VERSION,
    "PUT version;metadata/FIELD": OWN_VERSION,
    "PUT object (new version)": {
        ("namespace", "subtree-owner"),
        ("namespace", "subtree-update"),
        ("object", "owner"),
        ("object", "update"),
    },
    "PUT new object": {
        ("namespace", "owner"),
        ("namespace", "create"),
        ("namespace", "subtree-owner"),
        ("namespace", "subtree-create"),
    },
}


@pytest.fixture(scope="module", params=BACKENDS, ids=["-".join(pair) for pair in BACKENDS])
def table_client(request, tmp_path_factory):
    """One app per backend pair for the whole table (GETs on S3 redirect)."""
    directory, storage = request.param
    config = {
        "data_directory": str(tmp_path_factory.mktemp("acl-table") / "data"),
        "root_acls": TEST_ROOT_ACLS,
    }
    if directory == "postgres":
        server = request.getfixturevalue("postgres")
        config["database_dsn"] = server.new_schema(f"acltable{os.getpid()}_{next(_numbers)}")
    if storage == "amazons3":
        moto = request.getfixturevalue("moto")
        bucket = moto.create_bucket(f"hatrac-acl-table-{os.getpid()}-{next(_numbers)}")
        config["storage_backend"] = "amazons3"
        config["s3_config"] = moto.s3_config(
            bucket, bucket_path_prefix="hatrac", presigned_url_threshold=1
        )
    app = hatrac.create_app(config)
    app.testing = True
    yield FlaskProtocolClient(app)
    app.extensions["hatrac"].close()


def operations(client, top: str, location: str) -> dict:
    """Every operation as ``r``; the changing ones last, so they do not alter the others."""
    obj = top + "/obj"
    ctype = {"Content-Type": "text/plain"}
    return {
        "list namespace": client.get(top, user="r"),
        "GET object": client.get(obj, user="r"),
        "HEAD object": client.head(obj, user="r"),
        "GET version": client.get(location, user="r"),
        "HEAD version": client.head(location, user="r"),
        "GET range": client.get(obj, user="r", headers={"Range": "bytes=1-2"}),
        "GET object;metadata": client.get(obj + ";metadata", user="r"),
        "GET version;metadata/FIELD": client.get(location + ";metadata/content-md5", user="r"),
        "GET ;versions": client.get(obj + ";versions", user="r"),
        "GET object;acl": client.get(obj + ";acl", user="r"),
        "GET version;acl": client.get(location + ";acl", user="r"),
        "PUT version;metadata/FIELD": client.put(
            location + ";metadata/content-type", user="r", data=b"text/plain", headers=ctype
        ),
        "PUT object (new version)": client.put(obj, user="r", data=b"by r"),
        "PUT new object": client.put(top + "/new", user="r", data=b"by r"),
    }


@pytest.mark.parametrize("placement", PLACEMENTS, ids=lambda p: "-".join(filter(None, p)))
def test_acl_table(table_client, placement):
    client = table_client
    resource, access = placement
    top = f"/hatrac/acltable{next(_numbers)}"
    assert client.mkdir(top).status == 201
    assert client.put(top + ";acl/read", user="alice", json=[]).status == 204
    created = client.put(top + "/obj", user="alice", data=b"content", headers={})
    assert created.status == 201
    location = created.headers["Location"]
    if resource != "none":
        target = {"namespace": top, "object": top + "/obj", "version": location}[resource]
        assert client.put(f"{target};acl/{access}/r", user="alice").status == 204

    mismatches = []
    for operation, reply in operations(client, top, location).items():
        if placement in EXPECTED[operation]:
            ok = 200 <= reply.status < 300 or (reply.status == 303 and "GET" in operation)
        else:
            ok = reply.status == 403
        if not ok:
            mismatches.append(f"{operation}: {reply.status} {reply.text[:100]!r}")
    assert not mismatches, f"{placement}:\n" + "\n".join(mismatches)


def test_anonymous_is_401_where_denied(table_client):
    client = table_client
    top = f"/hatrac/acltable{next(_numbers)}"
    assert client.mkdir(top).status == 201
    assert client.put(top + ";acl/read", user="alice", json=[]).status == 204
    location = client.put(top + "/obj", user="alice", data=b"content").headers["Location"]
    assert client.put(top + "/obj;acl/read/%2A", user="alice").status == 204
    assert client.get(top + "/obj;versions").status == 200
    for url in (top + "/obj", location, location + ";metadata", top + "/obj;metadata"):
        assert client.get(url).status == 401
        assert client.head(url).status == 401

"""Creating a version with a given id (``PUT /name:VERSION``), for migrations only."""

from __future__ import annotations

import base64
import hashlib

import pytest
from clients import FlaskProtocolClient

import hatrac

MIGRATOR = "migrator"


@pytest.fixture
def client(make_config):
    application = hatrac.create_app(make_config(version_import_roles=[MIGRATOR]))
    application.testing = True
    yield FlaskProtocolClient(application)
    application.extensions["hatrac"].close()


@pytest.fixture
def ns(client) -> str:
    name = f"/hatrac/import{id(client)}"
    assert client.mkdir(name, user="alice").status == 201
    assert client.put(name + ";acl/subtree-owner/" + MIGRATOR, user="alice").status == 204
    return name


def test_a_migration_role_binds_the_given_id(client, ns):
    old_id = "4WQ7GKH3TVXJCIULOD5NAZM2EB"  # upstream's 26 base32 characters
    reply = client.put(
        f"{ns}/obj:{old_id}",
        user=MIGRATOR,
        data=b"old bytes",
        headers={"Content-Type": "text/plain"},
    )
    assert reply.status == 201, reply.text
    assert reply.headers["Location"] == f"{ns}/obj:{old_id}"
    got = client.get(f"{ns}/obj:{old_id}", user=MIGRATOR)
    assert got.status == 200 and got.body == b"old bytes"
    assert (
        got.headers["Content-MD5"] == base64.b64encode(hashlib.md5(b"old bytes").digest()).decode()
    )
    # later ordinary PUTs make new ids beside it; the given one stays
    assert client.put(f"{ns}/obj", user=MIGRATOR, data=b"new").status == 201
    assert client.get(f"{ns}/obj:{old_id}", user=MIGRATOR).body == b"old bytes"


def test_a_taken_or_retired_id_is_409(client, ns):
    version_id = "AAAAAAAAAAAAAAAAAAAAAAAAAA"
    assert client.put(f"{ns}/o:{version_id}", user=MIGRATOR, data=b"1").status == 201
    again = client.put(f"{ns}/o:{version_id}", user=MIGRATOR, data=b"2")
    assert again.status == 409
    assert client.get(f"{ns}/o:{version_id}", user=MIGRATOR).body == b"1"
    assert client.delete(f"{ns}/o:{version_id}", user=MIGRATOR).status == 204
    assert client.put(f"{ns}/o:{version_id}", user=MIGRATOR, data=b"3").status == 409


def test_other_clients_are_refused(client, ns):
    reply = client.put(f"{ns}/o:BBBBBBBBBBBBBBBBBBBBBBBBBB", user="alice", data=b"x")
    assert reply.status == 403
    assert "version_import_roles" in reply.text
    anonymous = client.put(f"{ns}/o:BBBBBBBBBBBBBBBBBBBBBBBBBB", user=None, data=b"x")
    assert anonymous.status == 401
    assert client.get(f"{ns}/o", user="alice").status == 404


def test_digests_are_verified(client, ns):
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    reply = client.put(
        f"{ns}/o:CCCCCCCCCCCCCCCCCCCCCCCCCC",
        user=MIGRATOR,
        data=b"x",
        headers={"Content-MD5": wrong},
    )
    assert reply.status == 400
    assert client.get(f"{ns}/o:CCCCCCCCCCCCCCCCCCCCCCCCCC", user=MIGRATOR).status == 404


def test_without_the_setting_versions_stay_immutable(make_config):
    application = hatrac.create_app(make_config())
    application.testing = True
    try:
        plain = FlaskProtocolClient(application)
        assert plain.mkdir("/hatrac/plain", user="alice").status == 201
        reply = plain.put("/hatrac/plain/o:DDDDDDDDDDDDDDDDDDDDDDDDDD", user="alice", data=b"x")
        assert reply.status == 405
        assert "PUT" not in reply.headers["Allow"]
    finally:
        application.extensions["hatrac"].close()

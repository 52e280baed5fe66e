"""Small versions kept inline in the database (inline_max_size), on every backend pair.

Bodies up to the limit are stored in ``inline_bytes`` with their version and
read back from the row that resolves the name; larger ones go to the storage
backend (filesystem or S3). Every promise of a PUT holds for both.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

import hatrac
from hatrac.cli import main
from hatrac.config import ConfigError, load_config
from hatrac.model.directory.sql import Directory

LIMIT = 1000


@pytest.fixture
def config(make_config) -> dict:
    return make_config(inline_max_size=LIMIT)


def _state(app):
    return app.extensions["hatrac"]


def _key_of(app, location: str) -> str:
    name, version = location.split("/hatrac", 1)[1].rsplit(":", 1)
    found = _state(app).directory.run(lambda tx: tx.get_version(tx.get_name(name).id, version))
    return found.storage_key


def _inline_keys(app) -> list[str]:
    rows = _state(app).directory.run(lambda tx: tx.all("SELECT storage_key FROM inline_bytes"))
    return sorted(row[0] for row in rows)


def _b64(digest) -> str:
    return base64.b64encode(digest).decode()


def test_size_boundary_round_trips_and_digests(client, app, ns):
    storage = _state(app).storage
    small, large = bytes(range(256)) * 3 + b"x" * (LIMIT - 768), b"y" * (LIMIT + 1)
    sent = {}
    for label, data in (("small", small), ("large", large), ("empty", b"")):
        reply = client.put(
            f"{ns}/{label}",
            user="alice",
            data=data,
            headers={"Content-MD5": _b64(hashlib.md5(data).digest())},
        )
        assert reply.status == 201, reply.text
        sent[label] = reply.headers["Location"]
    assert storage.is_inline(_key_of(app, sent["small"]))
    assert storage.is_inline(_key_of(app, sent["empty"]))
    large_key = _key_of(app, sent["large"])
    assert not storage.is_inline(large_key) and storage.large.exists(large_key)
    assert _inline_keys(app) == sorted([_key_of(app, sent["small"]), _key_of(app, sent["empty"])])
    for label, data in (("small", small), ("large", large), ("empty", b"")):
        for path in (f"{ns}/{label}", sent[label]):
            reply = client.get(path, user="alice")
            assert reply.status == 200 and reply.body == data
            assert reply.headers["Content-MD5"] == _b64(hashlib.md5(data).digest())
            assert reply.headers["Content-SHA256"] == _b64(hashlib.sha256(data).digest())


def test_range_head_and_conditions_on_inline_bytes(client, app, ns):
    data = b"0123456789abcdef"
    location = client.put(ns + "/obj", user="alice", data=data).headers["Location"]
    assert _state(app).storage.is_inline(_key_of(app, location))
    etag = client.head(ns + "/obj", user="alice").headers["ETag"]
    part = client.get(ns + "/obj", user="alice", headers={"Range": "bytes=2-5"})
    assert part.status == 206 and part.body == b"2345"
    assert part.headers["Content-Range"] == "bytes 2-5/16"
    tail = client.get(location, user="alice", headers={"Range": "bytes=-3"})
    assert tail.status == 206 and tail.body == b"def"
    assert client.get(ns + "/obj", user="alice", headers={"Range": "bytes=16-"}).status == 416
    head = client.head(ns + "/obj", user="alice")
    assert head.status == 200 and head.body == b"" and head.headers["Content-Length"] == "16"
    assert client.get(ns + "/obj", user="alice", headers={"If-None-Match": etag}).status == 304
    # a conditional PUT that fails stores nothing; one that holds binds the version
    refused = client.put(ns + "/obj", user="alice", data=b"new", headers={"If-Match": '"other"'})
    assert refused.status == 412
    assert client.put(ns + "/fresh", user="alice", data=b"x", headers={"If-Match": "*"}).status == (
        412
    )
    kept = client.put(ns + "/obj", user="alice", data=b"new", headers={"If-Match": etag})
    assert kept.status == 201
    assert client.get(ns + "/obj", user="alice").body == b"new"
    assert client.get(location, user="alice").body == data
    assert len(_inline_keys(app)) == 2


def test_refusals_come_first_and_store_nothing(client, app, ns):
    wrong = _b64(hashlib.md5(b"something else").digest())
    reply = client.put(ns + "/obj", user="alice", data=b"body", headers={"Content-MD5": wrong})
    assert reply.status == 400 and "Content-MD5" in reply.text
    # a client that may not create hears that, whatever else is wrong with its PUT
    denied = client.put(ns + "/obj", user="mallory", data=b"body", headers={"Content-MD5": wrong})
    assert denied.status == 403
    assert client.put(ns + "/obj", user="mallory", data=b"body").status == 403
    assert client.put(ns + "/missing/obj", user="alice", data=b"body").status == 404
    assert client.get(ns + "/obj", user="alice").status == 404
    assert _inline_keys(app) == []


def test_small_put_is_one_transaction(client, app, ns, monkeypatch):
    runs = []
    original = Directory.run

    def counted(self, work, write=False, serializable=True):
        runs.append(write)
        return original(self, work, write, serializable)

    monkeypatch.setattr(Directory, "run", counted)
    assert client.put(ns + "/one", user="alice", data=b"small").status == 201
    assert runs == [True]  # authorized and bound in the same write transaction
    runs.clear()
    continued = client.put(
        ns + "/two", user="alice", data=b"small", headers={"Expect": "100-continue"}
    )
    assert continued.status == 201
    assert runs == [False, True]  # checked before the body is asked for
    runs.clear()
    assert client.put(ns + "/three", user="alice", data=b"z" * (LIMIT + 1)).status == 201
    assert runs == [False, True]


def test_deletes_and_renames_release_inline_bytes(client, app, ns):
    first = client.put(ns + "/obj", user="alice", data=b"first").headers["Location"]
    second = client.put(ns + "/obj", user="alice", data=b"second").headers["Location"]
    assert client.delete(first, user="alice").status == 204
    assert _inline_keys(app) == [_key_of(app, second)]
    renamed = client.post(
        ns + "/moved",
        user="alice",
        json={"command": "rename_from", "source_name": ns.removeprefix("/hatrac") + "/obj"},
    )
    assert renamed.status in (200, 201), renamed.text
    assert client.get(ns + "/moved", user="alice").body == b"second"
    assert client.delete(ns + "/obj", user="alice").status == 204
    assert len(_inline_keys(app)) == 1  # the renamed version still shares the bytes
    assert client.delete(ns + "/moved", user="alice").status == 204
    assert _inline_keys(app) == []


def test_verify_and_a_switched_off_limit(make_config, tmp_path, capsys):
    config = make_config(inline_max_size=LIMIT)
    app = hatrac.create_app(config)
    client = hatrac_client(app)
    client.put("/hatrac/good", user="admin", data=b"good bytes")
    client.put("/hatrac/bad", user="admin", data=b"bad bytes")
    bad_key = _key_of(app, client.get("/hatrac/bad", user="admin").headers["Content-Location"])
    _state(app).directory.run(
        lambda tx: tx.execute(
            "UPDATE inline_bytes SET data = %s WHERE storage_key = %s", (b"rotten!!!", bad_key)
        ),
        write=True,
    )
    _state(app).close()
    config_file = tmp_path / "hatrac_config.json"
    config_file.write_text(json.dumps(config))
    assert main(["--config", str(config_file), "verify", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["checked"] == 2 and report["different"] == 1
    assert report["problems"][0]["url"].startswith("/hatrac/bad:")

    # inline versions stay readable when the limit is turned off; new ones go to files
    app = hatrac.create_app(dict(config, inline_max_size=0))
    client = hatrac_client(app)
    assert client.get("/hatrac/good", user="admin").body == b"good bytes"
    location = client.put("/hatrac/later", user="admin", data=b"later").headers["Location"]
    assert not _state(app).storage.is_inline(_key_of(app, location))
    _state(app).directory.run(
        lambda tx: tx.execute("DELETE FROM inline_bytes WHERE storage_key = %s", (bad_key,)),
        write=True,
    )
    assert client.get("/hatrac/bad", user="admin").status == 503  # lost bytes: verify says
    _state(app).close()
    assert main(["--config", str(config_file), "verify", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["checked"] == 3 and report["missing"] == 1


def hatrac_client(app):
    from clients import FlaskProtocolClient

    return FlaskProtocolClient(app)


@pytest.mark.parametrize("backends", [("sqlite", "filesystem")], indirect=True)
@pytest.mark.parametrize("value", [-1, 1024 * 1024 + 1])
def test_limit_is_validated(make_config, value):
    with pytest.raises(ConfigError, match="inline_max_size"):
        load_config(make_config(inline_max_size=value))

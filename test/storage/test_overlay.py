"""The overlay backend: reads try a chain of backends in turn, writes go to the first.

The realistic case is a migration from a directory to S3: the same database
is served first from the filesystem, then from ``[amazons3, filesystem]``.
"""

from __future__ import annotations

import os

import pytest
from clients import FlaskProtocolClient

import hatrac
from hatrac.model.storage import StorageError
from hatrac.model.storage.filesystem import FilesystemStorage
from hatrac.model.storage.overlay import OverlayStorage

ROOT = {"owner": ["admin"], "subtree-owner": ["*"]}


def test_migration_from_filesystem_to_s3(moto, tmp_path):
    bucket = moto.create_bucket(f"hatrac-overlay-{os.getpid()}")
    data = tmp_path / "data"
    # the bytes in the backends are what this is about: none inline
    old_app = hatrac.create_app(
        {"data_directory": str(data), "root_acls": ROOT, "inline_max_size": 0}
    )
    old = FlaskProtocolClient(old_app)
    assert old.put("/hatrac/ns/old?parents=true", user="u", data=b"from disk").status == 201
    kept = old.put("/hatrac/ns/kept", user="u", data=b"kept on disk").headers["Location"]
    old_app.extensions["hatrac"].close()

    app = hatrac.create_app(
        {
            "data_directory": str(data),
            "root_acls": ROOT,
            "inline_max_size": 0,
            "storage_backend": "overlay",
            "overlay_backends": [
                {"storage_backend": "amazons3", "s3_config": moto.s3_config(bucket)},
                {"storage_backend": "filesystem", "storage_path": "storage"},  # data/storage
            ],
        }
    )
    client = FlaskProtocolClient(app)
    storage = app.extensions["hatrac"].storage
    assert isinstance(storage.large, OverlayStorage)  # wrapped by InlineStorage
    # old versions are read from the filesystem, new ones written to S3
    assert client.get("/hatrac/ns/old").body == b"from disk"
    assert client.get("/hatrac/ns/old", headers={"Range": "bytes=5-8"}).body == b"disk"
    new = client.put("/hatrac/ns/new", user="u", data=b"in the cloud").headers["Location"]
    assert client.get(new).body == b"in the cloud"
    s3 = moto.client()
    assert len(s3.list_objects_v2(Bucket=bucket).get("Contents", [])) == 1
    disk = storage.backends[1]
    assert len(list(disk.keys())) == 2
    # a new version of an old object goes to S3 too; both stay readable
    newer = client.put("/hatrac/ns/kept", user="u", data=b"newer").headers["Location"]
    assert client.get(kept).body == b"kept on disk"
    assert client.get(newer).body == b"newer"
    assert len(s3.list_objects_v2(Bucket=bucket).get("Contents", [])) == 2
    # deletes reach whichever backend holds the bytes
    assert client.delete("/hatrac/ns/old", user="u").status == 204
    assert client.delete(new, user="u").status == 204
    assert len(list(disk.keys())) == 1
    assert len(s3.list_objects_v2(Bucket=bucket).get("Contents", [])) == 1
    # upload jobs go to the first backend
    job = client.post(
        "/hatrac/ns/job;upload", user="u", json={"chunk-length": 4, "content-length": 6}
    ).headers["Location"]
    assert client.put(job + "/0", user="u", data=b"abcd").status == 204
    assert client.put(job + "/1", user="u", data=b"ef").status == 204
    done = client.post(job, user="u")
    assert done.status == 201, done.text
    assert client.get(done.text.strip()).body == b"abcdef"
    assert len(s3.list_objects_v2(Bucket=bucket).get("Contents", [])) == 2
    app.extensions["hatrac"].close()


def test_chain_of_directories(tmp_path):
    first = FilesystemStorage(str(tmp_path / "one"))
    second = FilesystemStorage(str(tmp_path / "two"))
    second.commit(second.stage("OLD", [b"old"]))
    overlay = OverlayStorage([first, second])
    overlay.commit(overlay.stage("NEW", [b"new"]))
    assert first.exists("NEW") and not second.exists("NEW")
    assert overlay.exists("OLD") and overlay.exists("NEW")
    assert overlay.hash_stored("OLD", 3).size == 3
    body = overlay.open("OLD", 3)
    assert body.file.read() == b"old"
    body.file.close()
    overlay.delete("OLD")
    assert not second.exists("OLD")
    with pytest.raises(StorageError):
        overlay.open("OLD", 3)
    assert overlay.key_for("/a/b", "K") == "K"


def test_empty_chain_is_refused():
    with pytest.raises(StorageError):
        OverlayStorage([])

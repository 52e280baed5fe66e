"""S3 faults through moto (issue 13): a bucket that goes away answers 502,
an object store that stops answering 503 with Retry-After; nothing partial
is visible, nothing acknowledged is lost, and the service works again once
the store is back. The store is reached through a TCP relay the test can
cut, so the outage is a real refused connection."""

from __future__ import annotations

import hashlib
import os

import pytest
from clients import FlaskProtocolClient
from servers import TcpRelay

import hatrac


@pytest.fixture
def relayed(moto, tmp_path):
    relay = TcpRelay(moto.port).open()
    bucket = moto.create_bucket(f"hatrac-faults-{os.getpid()}")
    s3_config = moto.s3_config(bucket, bucket_path_prefix="hatrac")
    for settings in s3_config.get("buckets", {}).values():
        settings["client_config"]["endpoint_url"] = f"http://127.0.0.1:{relay.port}"
    app = hatrac.create_app(
        {
            "data_directory": str(tmp_path / "data"),
            "storage_backend": "amazons3",
            "s3_config": s3_config,
            "inline_max_size": 0,  # these faults are S3's: every byte goes there
            "root_acls": {"owner": ["admin"], "subtree-owner": ["*"]},
        }
    )
    yield app, relay, bucket
    app.extensions["hatrac"].close()
    relay.close()


def test_unreachable_store_is_503_and_recovers(relayed):
    app, relay, _ = relayed
    client = FlaskProtocolClient(app)
    kept = os.urandom(4096)
    assert client.put("/hatrac/kept", data=kept).status == 201
    relay.close()
    reply = client.put("/hatrac/lost", data=os.urandom(4096))
    assert reply.status == 503, reply.text
    assert "Retry-After" in reply.headers
    assert client.get("/hatrac/kept").status == 503
    assert client.get("/hatrac-health/ready").status == 503
    job = client.post("/hatrac/job;upload", json={"chunk-length": 4, "content-length": 8})
    assert job.status in (201, 503), job.text
    relay.open()
    assert client.get("/hatrac/lost").status == 404  # nothing partial
    assert hashlib.md5(client.get("/hatrac/kept").body).digest() == hashlib.md5(kept).digest()
    assert client.put("/hatrac/lost", data=b"now").status == 201


def test_bucket_gone_is_502_nothing_partial(relayed, moto):
    app, relay, bucket = relayed
    client = FlaskProtocolClient(app)
    assert client.put("/hatrac/first", data=b"first").status == 201
    s3 = moto.client()
    versions = s3.list_object_versions(Bucket=bucket)
    for entry in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])
    s3.delete_bucket(Bucket=bucket)
    reply = client.put("/hatrac/second", data=os.urandom(1024))
    assert reply.status == 502, reply.text
    assert "NoSuchBucket" in reply.text
    assert client.get("/hatrac/second").status == 404
    reply = client.get("/hatrac/first")
    assert reply.status in (502, 503), reply.text  # its bytes went with the bucket

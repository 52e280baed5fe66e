"""The amazons3 backend against a real S3 API: moto's server over HTTP, driven by boto3.

Covers what the protocol suite (which also runs on S3) does not: bucket
mapping by name prefix, streaming multipart PUTs, S3 versions removed on
delete, presigned redirects, startup checks and the orphan sweep. Upload
jobs are in test_s3_jobs.py, S3 faults in the middle of a write in
test_s3_errors.py.
"""

from __future__ import annotations

import hashlib
import os

import pytest
import requests
from clients import FlaskProtocolClient
from s3helpers import all_versions, b64, fresh_bucket, make_app
from servers import MotoServer

from hatrac.config import ConfigError, load_config
from hatrac.model.storage import StorageError
from hatrac.model.storage.s3 import S3Storage
from hatrac.model.storage.s3_buckets import MIN_PART_SIZE, PART_SIZE


# -- configuration and startup ------------------------------------------------------
def test_most_specific_prefix_wins(moto):
    general, special = fresh_bucket(moto), fresh_bucket(moto)
    config = {
        "buckets": {
            "/": moto.bucket_settings(general, bucket_path_prefix="all"),
            "/hatrac/big": moto.bucket_settings(special),
            "/hatrac/big/sub": moto.bucket_settings(special, bucket_path_prefix="deep/er"),
        }
    }
    storage = S3Storage(config)
    assert storage.key_for("/hatrac/x/obj", "V1") == f"{general}/all/V1"
    assert storage.key_for("/hatrac/big", "V1") == f"{special}/V1"
    assert storage.key_for("/hatrac/big/obj", "V1") == f"{special}/V1"
    assert storage.key_for("/hatrac/bigger/obj", "V1") == f"{general}/all/V1"
    assert storage.key_for("/hatrac/big/sub/obj", "V1") == f"{special}/deep/er/V1"
    # the place is in the key: reads need no name
    staged = storage.stage(storage.key_for("/hatrac/big/sub/o", "V2"), [b"abc"])
    storage.commit(staged)
    assert [v["Key"] for v in all_versions(moto, special)] == ["deep/er/V2"]
    body = storage.open(staged.key, 3)
    assert b"".join(body.chunks) == b"abc"


def test_names_map_to_buckets_through_the_service(moto, tmp_path):
    general, special = fresh_bucket(moto), fresh_bucket(moto)
    config = {
        "buckets": {
            "/hatrac": moto.bucket_settings(general),
            "/hatrac/special": moto.bucket_settings(special, bucket_path_prefix="p"),
        }
    }
    app = make_app(moto, tmp_path, config)
    client = FlaskProtocolClient(app)
    assert client.put("/hatrac/special/obj?parents=true", user="u", data=b"1").status == 201
    assert client.put("/hatrac/other/obj?parents=true", user="u", data=b"22").status == 201
    assert [v["Key"][:2] for v in all_versions(moto, special)] == ["p/"]
    assert len(all_versions(moto, general)) == 1
    assert client.get("/hatrac/special/obj").body == b"1"
    assert client.get("/hatrac/other/obj").body == b"22"
    app.extensions["hatrac"].close()


def test_missing_bucket_stops_startup_with_its_name(moto, tmp_path):
    with pytest.raises(Exception) as caught:
        make_app(moto, tmp_path, moto.s3_config("no-such-bucket-here"))
    assert "no-such-bucket-here" in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_unreachable_endpoint_stops_startup(moto, tmp_path):
    config = moto.s3_config("whatever")
    config["buckets"]["/"]["client_config"]["endpoint_url"] = "http://127.0.0.1:9"
    with pytest.raises(Exception) as caught:
        make_app(moto, tmp_path, config)
    assert "whatever" in str(caught.value)


def test_access_denied_names_the_bucket(tmp_path):
    # a second moto server enforcing authentication: unknown keys are refused
    server = MotoServer()
    server_env = os.environ.copy()
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    try:
        server.start()
    finally:
        os.environ.clear()
        os.environ.update(server_env)
    try:
        storage = S3Storage(server.s3_config("locked-bucket"))
        with pytest.raises(StorageError) as caught:
            storage.check()
        assert "locked-bucket" in str(caught.value)
        assert "access denied" in str(caught.value) or "cannot be used" in str(caught.value)
    finally:
        server.stop()


@pytest.mark.parametrize(
    "s3_config, fragment",
    [
        (None, "s3_config"),
        ({}, "buckets"),
        ({"buckets": {"/": {}}}, "bucket_name"),
        ({"buckets": {"hatrac": {"bucket_name": "b"}}}, "must begin with '/'"),
        ({"buckets": {"/": {"bucket_name": "b", "bucket": "x"}}}, "unknown field"),
        ({"buckets": {"/": {"bucket_name": "b", "presigned_url_threshold": "1"}}}, "threshold"),
        ({"buckets": {"/": {"bucket_name": "b", "client_config": []}}}, "client_config"),
    ],
)
def test_bad_s3_config_is_refused(s3_config, fragment):
    with pytest.raises(ConfigError) as caught:
        load_config({"storage_backend": "amazons3", "s3_config": s3_config})
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    "chain, fragment",
    [
        (None, "overlay_backends"),
        ([{"storage_backend": "overlay"}], "'filesystem' or 'amazons3'"),
        ([{"storage_backend": "filesystem"}], "storage_path"),
        ([{"storage_backend": "amazons3", "s3_config": {}}], "overlay_backends[0].s3_config"),
    ],
)
def test_bad_overlay_config_is_refused(chain, fragment):
    with pytest.raises(ConfigError) as caught:
        load_config({"storage_backend": "overlay", "overlay_backends": chain})
    assert fragment in str(caught.value)


def test_endpoint_and_tuning_pass_through(moto, bucket):
    storage = S3Storage(moto.s3_config(bucket))
    client = storage.mappings[0].client()
    assert client.meta.endpoint_url == moto.endpoint_url
    assert client.meta.config.connect_timeout == 2
    assert client.meta.region_name == "us-east-1"


# -- plain PUT -----------------------------------------------------------------------
def test_large_put_streams_in_parts_and_leaves_no_upload(client, moto, bucket, app):
    data = os.urandom(2 * PART_SIZE + 12345)
    reply = client.put(
        "/hatrac/big", user="u", data=data, headers={"Content-MD5": b64(hashlib.md5(data).digest())}
    )
    assert reply.status == 201, reply.text
    storage = app.extensions["hatrac"].storage
    assert storage.open_uploads() == []
    [version] = all_versions(moto, bucket)
    assert version["Size"] == len(data)
    got = client.get("/hatrac/big")
    assert got.body == data
    assert got.headers["Content-SHA256"] == b64(hashlib.sha256(data).digest())
    ranged = client.get("/hatrac/big", headers={"Range": f"bytes={PART_SIZE - 5}-{PART_SIZE + 4}"})
    assert ranged.status == 206
    assert ranged.body == data[PART_SIZE - 5 : PART_SIZE + 5]
    suffix = client.get("/hatrac/big", headers={"Range": "bytes=-7"})
    assert suffix.body == data[-7:]


def test_digest_mismatch_on_large_put_leaves_nothing(client, moto, bucket, app):
    data = os.urandom(PART_SIZE + 1)
    reply = client.put(
        "/hatrac/bad", user="u", data=data, headers={"Content-MD5": b64(hashlib.md5(b"x").digest())}
    )
    assert reply.status == 400
    assert app.extensions["hatrac"].storage.open_uploads() == []
    assert all_versions(moto, bucket) == []


def test_delete_removes_the_s3_versions(client, moto, bucket):
    client.put("/hatrac/obj", user="u", data=b"one")
    second = client.put("/hatrac/obj", user="u", data=b"two").headers["Location"]
    assert len(all_versions(moto, bucket)) == 2
    assert client.delete(second, user="u").status == 204
    assert len(all_versions(moto, bucket)) == 1
    assert client.delete("/hatrac/obj", user="u").status == 204
    assert all_versions(moto, bucket) == []


def test_empty_object(client):
    assert client.put("/hatrac/empty", user="u", data=b"").status == 201
    reply = client.get("/hatrac/empty")
    assert reply.status == 200 and reply.body == b""


# -- presigned redirects --------------------------------------------------------------
def test_large_get_redirects_to_a_presigned_url(moto, tmp_path, bucket):
    config = moto.s3_config(bucket, presigned_url_threshold=1000, presigned_url_expiration_secs=60)
    app = make_app(moto, tmp_path, config)
    client = FlaskProtocolClient(app)
    data = os.urandom(5000)
    client.put(
        "/hatrac/large",
        user="u",
        data=data,
        headers={
            "Content-Type": "text/csv",
            "Content-Disposition": "filename*=UTF-8''table.csv",
        },
    )
    client.put("/hatrac/small", user="u", data=b"tiny")
    client.put(
        "/hatrac/page",
        user="u",
        data=b"<script>" + data,
        headers={"Content-Type": "text/html", "Content-Disposition": "filename*=UTF-8''p.html"},
    )
    # an active type is a download on S3's origin too (docs/browsers.md)
    page = requests.get(client.get("/hatrac/page").headers["Location"], timeout=10)
    assert page.headers["Content-Disposition"] == "attachment; filename*=UTF-8''p.html"
    reply = client.get("/hatrac/large")
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.status in (302, 303, 307)
    url = reply.headers["Location"]
    assert url.startswith(moto.endpoint_url)
    assert "Expires=" in url or "X-Amz-Expires=60" in url
    fetched = requests.get(url, timeout=10)
    assert fetched.content == data
    # the redirected GET carries the version's type and disposition, as a direct GET would
    assert fetched.headers["Content-Type"] == "text/csv"
    assert fetched.headers["Content-Disposition"] == "filename*=UTF-8''table.csv"
    ranged = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert ranged.status_code == 206 and ranged.content == data[10:20]
    # HEAD is never redirected (clients do not follow it)
    head = client.head("/hatrac/large")
    assert head.status == 200
    assert head.headers["Content-Length"] == "5000"
    assert client.get("/hatrac/small").body == b"tiny"
    app.extensions["hatrac"].close()


# -- the orphan sweep ---------------------------------------------------------------
def test_sweep_removes_orphans_and_stale_put_uploads(storage, moto, bucket):
    live = storage.key_for("/hatrac/a", "LIVE")
    orphan = storage.key_for("/hatrac/a", "ORPHAN")
    for key in (live, orphan):
        storage.commit(storage.stage(key, [b"bytes"]))
    # a PUT whose abort never reached S3
    stale = storage.key_for("/hatrac/a", "STALE").split("/", 1)[1]
    moto.client().create_multipart_upload(Bucket=bucket, Key=stale)
    # an upload job in progress is not the sweep's business
    job = storage.create_job("busy", 2 * MIN_PART_SIZE, MIN_PART_SIZE)
    assert storage.sweep_orphans({live}, older_than=0) == []
    removed = storage.sweep_orphans({live}, older_than=2e9)
    assert sorted(removed) == sorted([orphan, f"{bucket}/{stale}"])
    assert storage.exists(live) and not storage.exists(orphan)
    assert list(storage.keys()) == [live]
    assert len(storage.open_uploads()) == 1  # the job's
    storage.cancel_job("busy", job)
    assert storage.open_uploads() == []

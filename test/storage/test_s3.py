"""The amazons3 backend against a real S3 API: moto's server over HTTP, driven by boto3.

Covers what the protocol suite (which also runs on S3) does not: bucket
mapping by name prefix, streaming multipart PUTs, upload jobs as multipart
uploads with large and tiny chunks, S3 versions removed on delete, presigned
redirects, startup checks and S3 faults in the middle of a write.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import threading
import time

import pytest
import requests
from clients import FlaskProtocolClient
from servers import GunicornServer, MotoServer

import hatrac
from hatrac.config import ConfigError, load_config
from hatrac.errors import BadGateway, HatracError
from hatrac.model.storage import ChunkReceipt, StorageError
from hatrac.model.storage.s3 import S3Storage
from hatrac.model.storage.s3_buckets import MIN_PART_SIZE, PART_SIZE

ROOT = {"owner": ["admin"], "subtree-owner": ["*"]}
_numbers = itertools.count()
MiB = 1024 * 1024


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def fresh_bucket(moto: MotoServer) -> str:
    return moto.create_bucket(f"hatrac-s3-{os.getpid()}-{next(_numbers)}")


@pytest.fixture
def bucket(moto) -> str:
    return fresh_bucket(moto)


@pytest.fixture
def storage(moto, bucket) -> S3Storage:
    backend = S3Storage(moto.s3_config(bucket, bucket_path_prefix="objects"))
    backend.check()
    return backend


def make_app(moto, tmp_path, s3_config, **overrides):
    config = {
        "data_directory": str(tmp_path / "data"),
        "root_acls": ROOT,
        "storage_backend": "amazons3",
        "s3_config": s3_config,
        "inline_max_size": 0,  # these tests are about the bytes in S3
    }
    config.update(overrides)
    app = hatrac.create_app(config)
    app.testing = True
    return app


@pytest.fixture
def app(moto, tmp_path, bucket):
    application = make_app(moto, tmp_path, moto.s3_config(bucket, bucket_path_prefix="hatrac"))
    yield application
    application.extensions["hatrac"].close()


@pytest.fixture
def client(app) -> FlaskProtocolClient:
    return FlaskProtocolClient(app)


def all_versions(moto, bucket: str) -> list[dict]:
    reply = moto.client().list_object_versions(Bucket=bucket)
    return reply.get("Versions", []) + reply.get("DeleteMarkers", [])


def versions_of_key(moto, key: str) -> list[dict]:
    bucket, _, object_key = key.partition("/")
    return [v for v in all_versions(moto, bucket) if v["Key"] == object_key]


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


# -- upload jobs ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "size, chunk",
    [
        (2 * MIN_PART_SIZE + 100, MIN_PART_SIZE),  # multipart: chunk N is part N+1
        (MIN_PART_SIZE + 3, 3 * MIN_PART_SIZE),  # one chunk: a single part of any size
        (300 * 1024 + 5, 4096),  # tiny chunks: staged, then parts of at least 5 MiB
        (PART_SIZE + 4096 * 3, 4096 * 257),  # small chunks spanning several parts
        (10, 4),
    ],
)
def test_job_assembles_and_hashes(storage, moto, bucket, size, chunk):
    data = os.urandom(size)
    count = (size + chunk - 1) // chunk
    order = list(reversed(range(count)))  # any order
    job = f"job{next(_numbers)}"
    state = storage.create_job(job, size, chunk)
    receipts = []
    for index in order:
        piece = data[index * chunk : (index + 1) * chunk]
        receipt = storage.write_chunk(job, state, index, index * chunk, [piece])
        assert receipt.md5_b64 == b64(hashlib.md5(piece).digest())
        receipts.append(receipt)
    # a chunk sent twice replaces itself
    again = storage.write_chunk(job, state, 0, 0, [data[:chunk]])
    receipts = [r for r in receipts if r.index != 0] + [again]
    key = storage.key_for("/hatrac/obj", f"V{next(_numbers)}")
    digests = storage.finalize_job(job, state, size, receipts, key)
    assert digests.size == size
    assert digests.md5_b64 == b64(hashlib.md5(data).digest())
    assert digests.sha256_b64 == b64(hashlib.sha256(data).digest())
    assert storage.hash_stored(key, size).sha256_b64 == digests.sha256_b64
    body = storage.open(key, size, 3, 5)
    assert b"".join(body.chunks) == data[3:8]
    storage.cancel_job(job, state)  # what the model does once the version is bound
    assert storage.open_uploads() == []
    assert [v["Key"] for v in all_versions(moto, bucket)] == [key.split("/", 1)[1]]


def test_large_chunk_job_is_a_multipart_upload(storage, moto, bucket):
    job = "multi"
    state = storage.create_job(job, 2 * MIN_PART_SIZE, MIN_PART_SIZE)
    uploads = moto.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert len(uploads) == 1
    storage.write_chunk(job, state, 1, MIN_PART_SIZE, [b"x" * MIN_PART_SIZE])
    parts = moto.client().list_parts(
        Bucket=bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"]
    )
    assert [p["PartNumber"] for p in parts["Parts"]] == [2]
    storage.cancel_job(job, state)
    assert moto.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert all_versions(moto, bucket) == []


def test_zero_length_job(storage):
    state = storage.create_job("empty", 0, 1024)
    key = storage.key_for("/hatrac/e", "VE")
    digests = storage.finalize_job("empty", state, 0, [], key)
    assert digests.size == 0
    assert digests.md5_b64 == b64(hashlib.md5(b"").digest())
    storage.cancel_job("empty", state)


def test_finalize_can_be_retried_after_the_version_was_not_bound(storage):
    data = os.urandom(MIN_PART_SIZE + 10)
    state = storage.create_job("retry", len(data), MIN_PART_SIZE)
    receipts = [
        storage.write_chunk("retry", state, 0, 0, [data[:MIN_PART_SIZE]]),
        storage.write_chunk("retry", state, 1, MIN_PART_SIZE, [data[MIN_PART_SIZE:]]),
    ]
    first = storage.key_for("/hatrac/o", "VR1")
    storage.finalize_job("retry", state, len(data), receipts, first)
    storage.delete(first)  # binding failed: the model reclaims the bytes
    second = storage.key_for("/hatrac/o", "VR2")
    digests = storage.finalize_job("retry", state, len(data), receipts, second)
    assert digests.md5_b64 == b64(hashlib.md5(data).digest())
    assert not storage.exists(first) and storage.exists(second)


def test_lost_job_storage_is_found_and_released(storage):
    state = storage.create_job("lost", 2 * MIN_PART_SIZE, MIN_PART_SIZE)
    storage.write_chunk("lost", state, 0, 0, [b"a" * MIN_PART_SIZE])
    small = storage.create_job("lost-small", 10, 4)
    storage.write_chunk("lost-small", small, 0, 0, [b"abcd"])
    assert storage.job_keys(older_than=0) == []
    assert set(storage.job_keys(older_than=2e9)) == {"lost", "lost-small"}
    storage.cancel_job("lost", "")  # the row is gone: no state
    storage.cancel_job("lost-small", "")
    assert storage.job_keys(older_than=2e9) == []
    assert storage.open_uploads() == []


def test_jobs_through_the_service(client, app, moto, bucket):
    data = os.urandom(MIN_PART_SIZE * 2 + 7)
    for chunk in (MIN_PART_SIZE, 64 * 1024):
        reply = client.post(
            "/hatrac/jobobj;upload",
            user="u",
            json={
                "chunk-length": chunk,
                "content-length": len(data),
                "content-md5": b64(hashlib.md5(data).digest()),
            },
        )
        assert reply.status == 201, reply.text
        job = reply.headers["Location"]
        for index in range(0, (len(data) + chunk - 1) // chunk):
            piece = data[index * chunk : (index + 1) * chunk]
            assert client.put(f"{job}/{index}", user="u", data=piece).status == 204
        done = client.post(job, user="u")
        assert done.status == 201, done.text
        assert client.get(done.text.strip()).body == data
    storage = app.extensions["hatrac"].storage
    assert storage.open_uploads() == []
    assert storage.job_keys(older_than=2e9) == []
    assert len(all_versions(moto, bucket)) == 2


def test_cancelled_job_leaves_nothing(client, app, moto, bucket):
    for chunk in (MIN_PART_SIZE, 4096):
        reply = client.post(
            "/hatrac/c;upload", user="u", json={"chunk-length": chunk, "content-length": chunk * 2}
        )
        job = reply.headers["Location"]
        assert client.put(f"{job}/0", user="u", data=b"z" * chunk).status == 204
        assert client.delete(job, user="u").status == 204
    assert app.extensions["hatrac"].storage.open_uploads() == []
    assert all_versions(moto, bucket) == []


# -- faults -------------------------------------------------------------------------------
@pytest.fixture
def live(moto, tmp_path, bucket):
    """The service under gunicorn on the test bucket (real streaming of request bodies)."""
    config = {
        "data_directory": str(tmp_path / "data"),
        "root_acls": ROOT,
        "storage_backend": "amazons3",
        "s3_config": moto.s3_config(bucket),
    }
    server = GunicornServer(config, tmp_path, workers=1, threads=4).start()
    yield server
    server.stop()


def test_s3_error_in_the_middle_of_a_put(live, moto, bucket):
    """The multipart upload vanishes mid-body (an S3 error): 502, no version, no upload."""
    s3 = moto.client()
    sabotaged = []

    def body():
        for number in range(4):
            if number == 2:
                time.sleep(1)  # the first part is on its way to S3
                for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                    s3.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    sabotaged.append(upload["Key"])
            yield b"q" * PART_SIZE

    reply = requests.put(live.url + "/hatrac/doomed", data=body(), timeout=60)
    assert sabotaged, "the PUT did not use a multipart upload"
    assert reply.status_code == 502, reply.text
    assert "object store" in reply.text
    assert requests.get(live.url + "/hatrac/doomed", timeout=10).status_code == 404
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert all_versions(moto, bucket) == []


def test_s3_down_in_the_middle_of_a_put_and_of_a_job(tmp_path):
    """S3 stops answering mid-body: 503 with a reason and no version; the same for
    a chunk and a finalization of a job; the service recovers when S3 is back."""
    private = MotoServer().start()
    server = None
    try:
        bucket = private.create_bucket("fragile")
        config = {
            "data_directory": str(tmp_path / "data"),
            "root_acls": ROOT,
            "storage_backend": "amazons3",
            "s3_config": private.s3_config(bucket),
        }
        server = GunicornServer(config, tmp_path, workers=1, threads=4).start()
        url = server.url
        job = (
            url
            + requests.post(
                url + "/hatrac/j;upload", json={"chunk-length": 4, "content-length": 8}, timeout=10
            ).headers["Location"]
        )
        assert requests.put(job + "/0", data=b"abcd", timeout=10).status_code == 204

        def body():
            yield b"a" * PART_SIZE
            time.sleep(1)
            private.stop()
            yield b"b" * PART_SIZE
            yield b"c"

        reply = requests.put(url + "/hatrac/obj", data=body(), timeout=60)
        assert reply.status_code in (502, 503), reply.text
        assert "object store" in reply.text
        reply = requests.put(job + "/1", data=b"efgh", timeout=30)
        assert reply.status_code in (502, 503), reply.text
        reply = requests.post(job, timeout=30)
        assert reply.status_code in (409, 502, 503), reply.text  # chunk 1 missing or S3 down
        assert requests.get(url + "/hatrac/obj", timeout=10).status_code == 404
        assert (
            requests.get(url + "/hatrac/j", timeout=10).status_code == 409
        )  # the job bound it; no version

        # S3 comes back (empty: moto keeps nothing); the same service works again
        restarted = MotoServer()
        restarted.port = private.port
        private = restarted.start()
        private.create_bucket("fragile")
        assert requests.put(url + "/hatrac/obj", data=b"fine", timeout=30).status_code == 201
        assert requests.get(url + "/hatrac/obj", timeout=10).content == b"fine"
    finally:
        if server is not None:
            server.stop()
        private.stop()


def test_fault_messages():
    import botocore.exceptions

    from hatrac.model.storage.s3_buckets import fault as _fault

    answer = botocore.exceptions.ClientError(
        {"Error": {"Code": "InternalError", "Message": "boom"}}, "UploadPart"
    )
    error = _fault("store the object", "b", answer)
    assert isinstance(error, BadGateway) and "InternalError" in error.message
    silence = botocore.exceptions.ConnectTimeoutError(endpoint_url="http://x")
    error = _fault("store the object", "b", silence)
    assert isinstance(error, HatracError) and error.status == 503


def test_concurrent_chunks_of_one_job(storage):
    data = os.urandom(4 * MIN_PART_SIZE)
    state = storage.create_job("par", len(data), MIN_PART_SIZE)
    receipts: dict[int, ChunkReceipt] = {}

    def send(index: int) -> None:
        piece = data[index * MIN_PART_SIZE : (index + 1) * MIN_PART_SIZE]
        receipts[index] = storage.write_chunk("par", state, index, 0, [piece])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    key = storage.key_for("/hatrac/p", "VP")
    digests = storage.finalize_job("par", state, len(data), list(receipts.values()), key)
    assert digests.sha256_b64 == b64(hashlib.sha256(data).digest())
    storage.cancel_job("par", state)


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

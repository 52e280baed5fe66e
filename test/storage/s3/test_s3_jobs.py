"""Upload jobs on the amazons3 backend: multipart uploads with large and tiny
chunks, retried finalizations, lost jobs, and jobs through the service."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest
from s3helpers import all_versions, b64, numbers

from hatrac.model.storage import ChunkReceipt
from hatrac.model.storage.s3_buckets import MIN_PART_SIZE, PART_SIZE


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
    job = f"job{next(numbers)}"
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
    key = storage.key_for("/hatrac/obj", f"V{next(numbers)}")
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

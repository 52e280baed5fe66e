"""Defect 1 of issue 13: a chunk sent twice at once, one copy cut off halfway,
must never become a version made of bytes that neither sender sent whole.

The interleaving is forced, not hoped for: sender A writes a quarter of the
chunk and pauses; sender B sends the whole chunk; then A writes another
quarter and is cut off. Storage that lets the two writes overlap ends with
B's bytes and a stripe of A's, logged as complete (B's write was the last to
finish). Each backend must leave one sender's whole bytes, or refuse to
finalize (409) until the chunk is sent again.
"""

from __future__ import annotations

import hashlib
import threading

import pytest

from hatrac.model.storage import ChunkReceipt
from hatrac.model.storage.base import TruncatedBody
from hatrac.model.storage.filesystem import FilesystemStorage
from hatrac.model.storage.jobs import ChunkInterrupted
from hatrac.model.storage.overlay import OverlayStorage

CHUNK = 64 * 1024


def _filesystem(tmp_path, _request):
    return FilesystemStorage(str(tmp_path / "fs"))


def _overlay(tmp_path, _request):
    return OverlayStorage(
        [FilesystemStorage(str(tmp_path / "new")), FilesystemStorage(str(tmp_path / "old"))]
    )


@pytest.fixture(params=[_filesystem, _overlay], ids=["filesystem", "overlay"])
def storage(request, tmp_path):
    return request.param(tmp_path, request)


def race_torn_and_whole(storage, job_key: str, state: str, index: int, torn: bytes, whole: bytes):
    """Send chunk ``index`` twice at once: ``torn`` cut off after half its bytes."""
    paused, finished = threading.Event(), threading.Event()
    offset = index * CHUNK

    def torn_blocks():
        yield torn[: CHUNK // 4]
        paused.set()
        # storage that serializes sends of one chunk keeps B waiting: time out
        finished.wait(0.5)
        yield torn[CHUNK // 4 : CHUNK // 2]
        raise TruncatedBody("the client went away")

    def send_torn():
        with pytest.raises(TruncatedBody):
            storage.write_chunk(job_key, state, index, offset, torn_blocks())

    def send_whole():
        storage.write_chunk(job_key, state, index, offset, iter([whole]))
        finished.set()

    first = threading.Thread(target=send_torn)
    first.start()
    assert paused.wait(5)
    second = threading.Thread(target=send_whole)
    second.start()
    first.join(10)
    second.join(10)
    assert not first.is_alive() and not second.is_alive()


def test_torn_chunk_never_assembled(storage):
    job_key = "01TORNJOB"
    head, torn, whole = b"h" * CHUNK, b"A" * CHUNK, b"B" * CHUNK
    state = storage.create_job(job_key, 2 * CHUNK, CHUNK)
    storage.write_chunk(job_key, state, 0, 0, iter([head]))
    race_torn_and_whole(storage, job_key, state, 1, torn, whole)
    receipts = [ChunkReceipt(0, CHUNK, "", ""), ChunkReceipt(1, CHUNK, "", "")]
    key = storage.key_for("/t/obj", "01TORNVERSION")
    try:
        digests = storage.finalize_job(job_key, state, 2 * CHUNK, receipts, key)
    except ChunkInterrupted:
        # the torn send was the last: resending the chunk makes the job whole
        storage.write_chunk(job_key, state, 1, CHUNK, iter([whole]))
        digests = storage.finalize_job(job_key, state, 2 * CHUNK, receipts, key)
    stored = storage.hash_stored(key, 2 * CHUNK)
    assert stored.md5.hexdigest() == hashlib.md5(head + whole).hexdigest()
    assert digests.md5_b64 == stored.md5_b64


def test_s3_finalize_uses_the_part_s3_holds(moto):
    """Two whole sends of one part with different bytes: S3 keeps one of them,
    and the ETag recorded with the chunk may be the other's. Finalize must
    assemble the part S3 holds (one sender's bytes), not fail with a 5xx."""
    from hatrac.model.storage.s3 import S3Storage

    bucket = moto.create_bucket("hatrac-torn-chunks")
    storage = S3Storage(moto.s3_config(bucket, bucket_path_prefix="hatrac"))
    job_key = "01TORNS3"
    state = storage.create_job(job_key, CHUNK, CHUNK)  # one chunk: a multipart upload
    first = storage.write_chunk(job_key, state, 0, 0, iter([b"A" * CHUNK]))
    storage.write_chunk(job_key, state, 0, 0, iter([b"B" * CHUNK]))
    key = storage.key_for("/t/obj", "01TORNS3VERSION")
    # the directory recorded the first sender's receipt (its ETag)
    digests = storage.finalize_job(job_key, state, CHUNK, [first], key)
    stored = storage.hash_stored(key, CHUNK)
    assert stored.md5.hexdigest() == hashlib.md5(b"B" * CHUNK).hexdigest()
    assert digests.md5_b64 == stored.md5_b64

"""Upload jobs of S3 storage: chunks as multipart parts or staged objects.

A job's bytes live under a private prefix of the staging bucket (the most
general mapping's) until it is finalized: as an S3 multipart upload on
PREFIX/assembled when chunks are at least S3's 5 MiB part minimum (chunk
N is part N+1), else as one temporary object per chunk. Finalizing
completes the multipart upload and streams the assembled bytes into the
version's key, hashing them in the same pass; the job's own bytes stay
until ``cancel_job``, so a finalization whose version cannot be bound can be
retried. Nothing larger than one part is ever held in memory.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import botocore.exceptions

from ...errors import HatracError
from .base import ChunkReceipt, Digests, StorageError
from .jobs import ChunkInterrupted, JobGone
from .s3_buckets import (
    MIN_PART_SIZE,
    S3_ERRORS,
    BucketMapping,
    error_code,
    fault,
    multipart_uploads,
    purge,
    stream_chunks,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient

JOBS_DIRECTORY = ".hatrac-jobs"
# spool chunks larger than this to a local temporary file instead of memory
SPOOL_IN_MEMORY = 8 * 1024 * 1024
# finalizing a job of small chunks fetches this many (and at most this many bytes) ahead
PREFETCH_OBJECTS = 16
PREFETCH_BYTES = 64 * 1024 * 1024


class S3UploadJobs:
    """The upload-job half of :class:`~.s3.S3Storage` (a mixin: it uses the
    storage's mappings, ``stage``/``commit``/``discard``/``delete`` and ``_exists``)."""

    def _job_prefix(self, mapping: BucketMapping, job_key: str) -> str:
        if "/" in job_key or not job_key:
            raise ValueError(f"invalid job key {job_key!r}")
        return mapping.object_key(f"{JOBS_DIRECTORY}/{job_key}/")

    def create_job(self, job_key: str, size: int, chunk_length: int) -> str:
        mapping = self.mapping_for(None)
        state: dict[str, Any] = {
            "bucket": mapping.bucket,
            "staging": self._job_prefix(mapping, job_key),
            "size": size,
            "chunk_length": chunk_length,
        }
        if size > 0 and (chunk_length >= MIN_PART_SIZE or size <= chunk_length):
            try:
                state["upload_id"] = mapping.client().create_multipart_upload(
                    Bucket=mapping.bucket, Key=state["staging"] + "assembled"
                )["UploadId"]
            except S3_ERRORS as error:
                raise fault("start a multipart upload", mapping.bucket, error) from None
        return json.dumps(state, separators=(",", ":"))

    def _job(self, state: str) -> tuple[dict, BucketMapping]:
        job = json.loads(state)
        mapping = self.by_bucket.get(job["bucket"])
        if mapping is None:
            raise StorageError(
                f"upload job staged in bucket {job['bucket']!r}, which s3_config no longer names"
            )
        return job, mapping

    def write_chunk(
        self, job_key: str, state: str, index: int, offset: int, blocks: Iterable[bytes]
    ) -> ChunkReceipt:
        job, mapping = self._job(state)
        client = mapping.client()
        digests = Digests()
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            for block in blocks:
                digests.update(block)
                spool.write(block)
            spool.seek(0)
            try:
                if job.get("upload_id"):
                    reply = client.upload_part(
                        Bucket=job["bucket"],
                        Key=job["staging"] + "assembled",
                        UploadId=job["upload_id"],
                        PartNumber=index + 1,
                        Body=spool,
                        ContentLength=digests.size,
                    )
                else:
                    reply = client.put_object(
                        Bucket=job["bucket"],
                        Key=f"{job['staging']}{index}",
                        Body=spool,
                        ContentLength=digests.size,
                    )
            except S3_ERRORS as error:
                if error_code(error) == "NoSuchUpload":
                    raise JobGone("The upload job was cancelled or finalized.") from None
                raise fault("store the chunk", job["bucket"], error) from None
        return ChunkReceipt(
            index=index,
            size=digests.size,
            md5_b64=digests.md5_b64,
            sha256_b64=digests.sha256_b64,
            state=reply["ETag"],
        )

    def finalize_job(
        self, job_key: str, state: str, size: int, chunks: list[ChunkReceipt], key: str
    ) -> Digests:
        job, mapping = self._job(state)
        client = mapping.client()
        chunks = sorted(chunks, key=lambda c: c.index)
        if job.get("upload_id") and chunks:
            assembled = job["staging"] + "assembled"
            try:
                # S3 keeps, of concurrent sends of one part, the last one that
                # completed, whole: assemble what it holds (the ETags recorded
                # with the chunks may be of another send of the same bytes)
                held = _part_etags(client, job["bucket"], assembled, job["upload_id"])
                missing = [c.index for c in chunks if c.index + 1 not in held]
                if missing:
                    shown = ", ".join(str(i) for i in missing[:20])
                    raise ChunkInterrupted(
                        f"The object store holds no complete copy of chunk(s) {shown}; "
                        "send them again, then finalize."
                    )
                client.complete_multipart_upload(
                    Bucket=job["bucket"],
                    Key=assembled,
                    UploadId=job["upload_id"],
                    MultipartUpload={
                        "Parts": [
                            {"PartNumber": c.index + 1, "ETag": held[c.index + 1]} for c in chunks
                        ]
                    },
                )
            except S3_ERRORS as error:
                # completed by an earlier finalization whose version was not bound?
                if error_code(error) != "NoSuchUpload":
                    raise fault("assemble the uploaded chunks", job["bucket"], error) from None
                if not self._exists(client, job["bucket"], assembled):
                    raise JobGone(
                        "The upload job was finalized (or cancelled) by another request."
                    ) from None
            sources = [assembled]
        elif job.get("upload_id"):
            sources = []
        else:
            sources = [f"{job['staging']}{c.index}" for c in chunks]
        if len(sources) > 1:
            # many small objects: fetch ahead in parallel (up to 10 000 round trips)
            ahead = max(1, min(PREFETCH_OBJECTS, PREFETCH_BYTES // max(1, job["chunk_length"])))
            blocks = _prefetch_objects(client, job["bucket"], sources, ahead)
        else:
            blocks = read_objects(client, job["bucket"], sources)
        staged = self.stage(key, blocks)
        try:
            self.commit(staged)
        except BaseException:
            self.discard(staged)
            raise
        if staged.size != size:
            self.delete(key)
            raise StorageError(
                f"The assembled upload has {staged.size} bytes, not the job's {size}."
            )
        return staged.digests

    def cancel_job(self, job_key: str, state: str) -> None:
        try:
            job, mapping = self._job(state)
        except (TypeError, ValueError, KeyError):
            # no state (a lost job found by job_keys): it was staged in the default bucket
            mapping = self.mapping_for(None)
            job = {"bucket": mapping.bucket, "staging": self._job_prefix(mapping, job_key)}
        client = mapping.client()
        try:
            uploads = (
                [{"Key": job["staging"] + "assembled", "UploadId": job["upload_id"]}]
                if job.get("upload_id")
                else multipart_uploads(client, job["bucket"], job["staging"])
            )
            for upload in uploads:
                try:
                    client.abort_multipart_upload(
                        Bucket=job["bucket"], Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                except botocore.exceptions.ClientError as error:
                    if error_code(error) != "NoSuchUpload":
                        raise
            purge(client, job["bucket"], job["staging"])
        except S3_ERRORS as error:
            raise fault("remove the upload job's parts", job["bucket"], error) from None

    def job_keys(self, older_than: float) -> list[str]:
        """Jobs with staged bytes untouched since ``older_than`` (for sweeping lost jobs)."""
        mapping = self.mapping_for(None)
        client = mapping.client()
        root = mapping.object_key(f"{JOBS_DIRECTORY}/")
        newest: dict[str, float] = {}
        paginator = client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=mapping.bucket, Prefix=root):
            for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                job = entry["Key"][len(root) :].split("/", 1)[0]
                stamp = entry["LastModified"].timestamp()
                newest[job] = max(newest.get(job, 0.0), stamp)
        for upload in multipart_uploads(client, mapping.bucket, root):
            job = upload["Key"][len(root) :].split("/", 1)[0]
            stamp = upload["Initiated"].timestamp()
            newest[job] = max(newest.get(job, 0.0), stamp)
        return sorted(job for job, stamp in newest.items() if stamp < older_than)


def _chunk_fault(bucket: str, error: BaseException) -> HatracError:
    """A job's staged bytes could not be read: gone (a racing finalization or a
    cancellation released them) or the store failed."""
    if error_code(error) in ("NoSuchKey", "404"):
        return JobGone("The upload job was finalized (or cancelled) by another request.")
    return fault("read the uploaded chunks", bucket, error)


def _prefetch_objects(
    client: BaseClient, bucket: str, object_keys: list[str], ahead: int
) -> Iterator[bytes]:
    """The bytes of several small objects in order, ``ahead`` of them fetched in parallel."""

    def fetch(object_key: str) -> bytes:
        try:
            reply = client.get_object(Bucket=bucket, Key=object_key)
            return reply["Body"].read()
        except S3_ERRORS as error:
            raise _chunk_fault(bucket, error) from None

    pending: deque = deque()
    remaining = iter(object_keys)
    with ThreadPoolExecutor(max_workers=ahead) as pool:
        try:
            for object_key in itertools.islice(remaining, ahead):
                pending.append(pool.submit(fetch, object_key))
            while pending:
                data = pending.popleft().result()
                following = next(remaining, None)
                if following is not None:
                    pending.append(pool.submit(fetch, following))
                yield data
        finally:
            for future in pending:
                future.cancel()


def _part_etags(client: BaseClient, bucket: str, key: str, upload_id: str) -> dict[int, str]:
    """Part number -> ETag of the parts S3 holds for one multipart upload."""
    held: dict[int, str] = {}
    paginator = client.get_paginator("list_parts")
    for page in paginator.paginate(Bucket=bucket, Key=key, UploadId=upload_id):
        for part in page.get("Parts", []):
            held[part["PartNumber"]] = part["ETag"]
    return held


def read_objects(client: BaseClient, bucket: str, object_keys: list[str]) -> Iterator[bytes]:
    """The bytes of several objects, one after the other, in blocks."""
    for object_key in object_keys:
        try:
            reply = client.get_object(Bucket=bucket, Key=object_key)
            yield from stream_chunks(reply["Body"])
        except S3_ERRORS as error:
            raise _chunk_fault(bucket, error) from None

"""Amazon S3 storage (or any S3-compatible store), through boto3.

Configuration (``s3_config``)::

    {"default_session": {...boto3 Session arguments...},
     "buckets": {"/hatrac": {"bucket_name": "b", "bucket_path_prefix": "hatrac",
                             "presigned_url_threshold": 1048576,
                             "presigned_url_expiration_secs": 120,
                             "session_config": {...}, "client_config": {...}}}}

``buckets`` is keyed by name prefix, a URL path as clients see it
(``/hatrac/project``; the path without the service prefix is matched too);
the most specific prefix matching an object's name decides where its bytes
go. ``session_config`` is passed to
``boto3.session.Session`` (``default_session`` when absent); ``client_config``
to ``botocore.config.Config``, except the arguments of ``Session.client``
itself (``endpoint_url``, ``region_name``, ``verify``, ``use_ssl``, keys),
which are passed there, so any S3-compatible endpoint works.

Storage keys encode their location, ``BUCKET/OBJECT-KEY``, so reading and
deleting never need the object's name and survive a reordering of the
mapping. :meth:`S3Storage.key_for` builds them from the name (the model asks
before it stores anything); keys without a ``/`` are not ours (an overlay
passes them on to the next backend).

Writes: a plain PUT is streamed to S3 in parts of :data:`PART_SIZE` (one
``PutObject`` for smaller bodies), hashed in the same pass; nothing larger
than one part is ever held in memory. An upload job whose chunks are at
least S3's 5 MiB minimum is an S3 multipart upload on the final key (chunk N
is part N+1); smaller chunks are staged as temporary objects and streamed
into parts of at least 5 MiB when the job is finalized. Deleting removes
every S3 version of the key (buckets should be versioned; keys are never
reused, so each holds one version). Reads stream from S3 and honour ranges;
objects at or above ``presigned_url_threshold`` are answered with a redirect
to a short-lived presigned URL, so their bytes never pass through the service.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import tempfile
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional

import boto3
import botocore.config
import botocore.exceptions

from ...errors import BadGateway, HatracError
from .base import BLOCK_SIZE, Body, ChunkReceipt, Digests, Staged, Storage, StorageError
from .jobs import ChunkInterrupted, JobGone

logger = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024
# spool chunks larger than this to a local temporary file instead of memory
SPOOL_IN_MEMORY = 8 * 1024 * 1024
JOBS_DIRECTORY = ".hatrac-jobs"
# finalizing a job of small chunks fetches this many (and at most this many bytes) ahead
PREFETCH_OBJECTS = 16
PREFETCH_BYTES = 64 * 1024 * 1024

# arguments of boto3 Session.client() accepted in client_config/session_config
CLIENT_ARGUMENTS = (
    "endpoint_url",
    "region_name",
    "verify",
    "use_ssl",
    "api_version",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
)
SESSION_ARGUMENTS = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "region_name",
    "profile_name",
    "botocore_session",
)
BUCKET_FIELDS = (
    "bucket_name",
    "bucket_path_prefix",
    "presigned_url_threshold",
    "presigned_url_expiration_secs",
    "session_config",
    "client_config",
)
DEFAULT_CLIENT_CONFIG = {
    "connect_timeout": 10,
    "read_timeout": 60,
    "retries": {"max_attempts": 3, "mode": "standard"},
}


class S3ConfigError(ValueError):
    """``s3_config`` is malformed; the message names the field."""


def validate_s3_config(s3_config: Any, where: str = "s3_config") -> None:
    """Raise :class:`S3ConfigError` unless ``s3_config`` is usable."""
    if not isinstance(s3_config, dict):
        raise S3ConfigError(f"config field '{where}' must be an object with 'buckets'")
    unknown = set(s3_config) - {"default_session", "buckets", "comment", "_comment"}
    if unknown:
        raise S3ConfigError(
            f"config field '{where}' has unknown field(s) {', '.join(sorted(unknown))}; "
            "known: default_session, buckets"
        )
    if not isinstance(s3_config.get("default_session", {}), dict):
        raise S3ConfigError(f"config field '{where}.default_session' must be an object")
    buckets = s3_config.get("buckets")
    if not isinstance(buckets, dict) or not buckets:
        raise S3ConfigError(
            f"config field '{where}.buckets' must be an object mapping name prefixes "
            'to bucket settings, e.g. {"/hatrac": {"bucket_name": "my-bucket"}}'
        )
    for prefix, settings in buckets.items():
        here = f"{where}.buckets[{prefix!r}]"
        if not prefix.startswith("/"):
            raise S3ConfigError(f"{here}: a name prefix must begin with '/'")
        if not isinstance(settings, dict):
            raise S3ConfigError(f"{here} must be an object")
        unknown = set(settings) - set(BUCKET_FIELDS) - {"comment", "_comment"}
        if unknown:
            raise S3ConfigError(
                f"{here} has unknown field(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(BUCKET_FIELDS)}"
            )
        if not isinstance(settings.get("bucket_name"), str) or not settings["bucket_name"]:
            raise S3ConfigError(f"{here}.bucket_name must be a non-empty string")
        if "/" in settings["bucket_name"]:
            raise S3ConfigError(f"{here}.bucket_name must not contain '/'")
        if not isinstance(settings.get("bucket_path_prefix", ""), str):
            raise S3ConfigError(f"{here}.bucket_path_prefix must be a string")
        for number in ("presigned_url_threshold", "presigned_url_expiration_secs"):
            value = settings.get(number)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise S3ConfigError(f"{here}.{number} must be a non-negative integer or null")
        if settings.get("presigned_url_expiration_secs") == 0:
            raise S3ConfigError(f"{here}.presigned_url_expiration_secs must be positive")
        for nested in ("session_config", "client_config"):
            if not isinstance(settings.get(nested, {}), dict):
                raise S3ConfigError(f"{here}.{nested} must be an object")


@dataclass
class BucketMapping:
    """Where the bytes of names under ``prefix`` go, and how to reach them."""

    prefix: str
    bucket: str
    path_prefix: str
    presigned_url_threshold: Optional[int]
    presigned_url_expiration: int
    session_config: dict
    client_config: dict
    _clients: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def object_key(self, key: str) -> str:
        return f"{self.path_prefix}/{key}" if self.path_prefix else key

    def client(self):
        """A boto3 S3 client of this process (clients are thread-safe, sessions not)."""
        pid = os.getpid()
        found = self._clients.get(pid)
        if found is None:
            with self._lock:
                found = self._clients.get(pid)
                if found is None:
                    found = _make_client(self.session_config, self.client_config)
                    self._clients = {pid: found}
        return found


def _make_client(session_config: dict, client_config: dict):
    session_arguments = {k: v for k, v in session_config.items() if k in SESSION_ARGUMENTS}
    client_arguments = {k: v for k, v in session_config.items() if k in CLIENT_ARGUMENTS}
    client_arguments.pop("region_name", None)
    client_arguments.update({k: v for k, v in client_config.items() if k in CLIENT_ARGUMENTS})
    tuning = dict(DEFAULT_CLIENT_CONFIG)
    tuning.update({k: v for k, v in client_config.items() if k not in CLIENT_ARGUMENTS})
    session = boto3.session.Session(**session_arguments)
    return session.client("s3", config=botocore.config.Config(**tuning), **client_arguments)


def _matches(prefix: str, name: str) -> bool:
    prefix = prefix.rstrip("/")
    return prefix == "" or name == prefix or name.startswith(prefix + "/")


def _error_code(error: BaseException) -> str:
    if isinstance(error, botocore.exceptions.ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def _fault(action: str, bucket: str, error: BaseException) -> HatracError:
    """The client-facing error for an S3 failure: 502 for an answer, 503 for no answer."""
    if isinstance(error, HatracError):
        return error
    if isinstance(error, botocore.exceptions.ClientError):
        code = _error_code(error)
        message = error.response.get("Error", {}).get("Message", "")
        return BadGateway(
            f"The object store failed to {action} (bucket {bucket}: {code} {message}); "
            "nothing was changed, please retry."
        )
    return StorageError(
        f"The object store is unreachable or timed out while trying to {action} "
        f"(bucket {bucket}: {error}); nothing was changed, please retry."
    )


_S3_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


@dataclass
class Location:
    mapping: BucketMapping
    bucket: str
    object_key: str


class S3Storage(Storage):
    """Bytes as objects in S3 buckets chosen by name prefix."""

    name = "amazons3"
    hashes_chunks = True  # a part is spooled and hashed before it is sent

    def __init__(self, s3_config: dict, service_prefix: str = "/hatrac"):
        try:
            validate_s3_config(s3_config)
        except S3ConfigError as error:
            raise StorageError(str(error)) from None
        default_session = s3_config.get("default_session", {})
        self.mappings: list[BucketMapping] = []
        for prefix, settings in s3_config["buckets"].items():
            self.mappings.append(
                BucketMapping(
                    prefix=prefix,
                    bucket=settings["bucket_name"],
                    path_prefix=settings.get("bucket_path_prefix", "").strip("/"),
                    presigned_url_threshold=settings.get("presigned_url_threshold"),
                    presigned_url_expiration=settings.get("presigned_url_expiration_secs") or 300,
                    session_config=settings.get("session_config", default_session),
                    client_config=settings.get("client_config", {}),
                )
            )
        # prefixes are URL paths as clients see them (/hatrac/...), as upstream;
        # the model's names lack the service prefix
        self.service_prefix = service_prefix.rstrip("/")
        # most specific prefix first
        self.mappings.sort(key=lambda m: len(m.prefix.rstrip("/")), reverse=True)
        self._warned: set[str] = set()
        self.by_bucket: dict[str, BucketMapping] = {}
        for mapping in reversed(self.mappings):  # the most general mapping of a bucket wins
            self.by_bucket[mapping.bucket] = mapping

    # -- locations ------------------------------------------------------------
    def mapping_for(self, name: Optional[str]) -> BucketMapping:
        if name is not None:
            url_path = self.service_prefix + name if name != "/" else self.service_prefix or "/"
            for mapping in self.mappings:
                if _matches(mapping.prefix, url_path) or _matches(mapping.prefix, name):
                    return mapping
        return self.mappings[-1]

    def key_for(self, name: Optional[str], key: str) -> str:
        mapping = self.mapping_for(name)
        return f"{mapping.bucket}/{mapping.object_key(key)}"

    def owns(self, key: str) -> bool:
        bucket, _, rest = key.partition("/")
        return bool(rest) and bucket in self.by_bucket

    def locate(self, key: str) -> Location:
        bucket, _, object_key = key.partition("/")
        if not object_key:
            raise StorageError(f"storage key {key!r} does not name an S3 bucket")
        mapping = self.by_bucket.get(bucket)
        if mapping is None:
            raise StorageError(
                f"storage key {key!r} is in bucket {bucket!r}, which s3_config no longer names; "
                "add a mapping for it"
            )
        return Location(mapping, bucket, object_key)

    def check(self) -> None:
        for mapping in self.mappings:
            client = mapping.client()
            try:
                client.head_bucket(Bucket=mapping.bucket)
            except botocore.exceptions.ClientError as error:
                code = _error_code(error)
                if code in ("404", "NoSuchBucket", "NotFound"):
                    reason = "does not exist; create it (with versioning enabled)"
                elif code in ("403", "AccessDenied", "Forbidden"):
                    reason = (
                        "is not accessible with the configured credentials (access denied); "
                        "grant them the permissions listed in docs/s3.md"
                    )
                else:
                    reason = f"cannot be used ({code})"
                raise StorageError(
                    f"S3 bucket {mapping.bucket!r} (s3_config.buckets[{mapping.prefix!r}]) {reason}"
                ) from None
            except botocore.exceptions.BotoCoreError as error:
                raise StorageError(
                    f"S3 bucket {mapping.bucket!r} (s3_config.buckets[{mapping.prefix!r}]) "
                    f"cannot be reached: {error}"
                ) from None
            try:
                status = client.get_bucket_versioning(Bucket=mapping.bucket).get("Status")
            except _S3_ERRORS:
                status = "unknown"
            if status != "Enabled" and mapping.bucket not in self._warned:
                self._warned.add(mapping.bucket)  # once, not on every readiness probe
                logger.warning(
                    "S3 bucket %s does not have versioning enabled (status %s); enable it",
                    mapping.bucket,
                    status,
                )

    # -- plain PUT ----------------------------------------------------------------
    def stage(self, key: str, blocks: Iterable[bytes]) -> Staged:
        where = self.locate(key)
        client = where.mapping.client()
        digests = Digests()
        upload_id = None
        parts: list[dict] = []
        buffer = bytearray()

        def send_part(upload_id: str, data: bytearray) -> None:
            number = len(parts) + 1
            part = client.upload_part(
                Bucket=where.bucket,
                Key=where.object_key,
                UploadId=upload_id,
                PartNumber=number,
                Body=bytes(data),
            )
            parts.append({"PartNumber": number, "ETag": part["ETag"]})

        try:
            for block in blocks:
                digests.update(block)
                buffer += block
                if len(buffer) >= PART_SIZE:
                    if upload_id is None:
                        upload_id = client.create_multipart_upload(
                            Bucket=where.bucket, Key=where.object_key
                        )["UploadId"]
                    send_part(upload_id, buffer)
                    buffer = bytearray()
            if upload_id is None:
                reply = client.put_object(
                    Bucket=where.bucket, Key=where.object_key, Body=bytes(buffer)
                )
                handle = {"version_id": reply.get("VersionId")}
            else:
                if buffer:
                    send_part(upload_id, buffer)
                handle = {"upload_id": upload_id, "parts": parts}
        except BaseException as error:
            digests.close()
            if upload_id is not None:
                self._abort(client, where, upload_id)
            if isinstance(error, _S3_ERRORS):
                raise _fault("store the object", where.bucket, error) from None
            raise
        return Staged(key=key, size=digests.size, digests=digests, handle=handle)

    def commit(self, staged: Staged) -> None:
        upload_id = staged.handle.get("upload_id")
        if upload_id is None:
            return  # a single PutObject is already complete
        where = self.locate(staged.key)
        client = where.mapping.client()
        try:
            client.complete_multipart_upload(
                Bucket=where.bucket,
                Key=where.object_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": staged.handle["parts"]},
            )
        except _S3_ERRORS as error:
            self._abort(client, where, upload_id)
            self._delete_versions(client, where)  # in case it completed after all
            raise _fault("store the object", where.bucket, error) from None

    def discard(self, staged: Staged) -> None:
        where = self.locate(staged.key)
        client = where.mapping.client()
        upload_id = staged.handle.get("upload_id")
        if upload_id is not None:
            self._abort(client, where, upload_id)
        else:
            try:
                self._delete_versions(client, where)
            except _S3_ERRORS:
                logger.exception("could not discard %s; the orphan sweep will", staged.key)

    def _abort(self, client, where: Location, upload_id: str) -> None:
        try:
            client.abort_multipart_upload(
                Bucket=where.bucket, Key=where.object_key, UploadId=upload_id
            )
        except _S3_ERRORS as error:
            if _error_code(error) != "NoSuchUpload":
                logger.warning(
                    "could not abort S3 multipart upload %s of %s/%s: %s",
                    upload_id,
                    where.bucket,
                    where.object_key,
                    error,
                )

    # -- reading ------------------------------------------------------------------
    def open(
        self,
        key: str,
        size: int,
        start: int = 0,
        length: Optional[int] = None,
        *,
        content_type: Optional[str] = None,
        content_disposition: Optional[str] = None,
    ) -> Body:
        where = self.locate(key)
        mapping = where.mapping
        client = mapping.client()
        if length is None:
            length = size - start
        threshold = mapping.presigned_url_threshold
        if threshold is not None and size >= threshold and size > 0:
            params = {"Bucket": where.bucket, "Key": where.object_key}
            # S3 answers the redirected GET with the version's own headers
            if content_type:
                params["ResponseContentType"] = content_type
            if content_disposition:
                params["ResponseContentDisposition"] = content_disposition
            try:
                url = client.generate_presigned_url(
                    "get_object", Params=params, ExpiresIn=mapping.presigned_url_expiration
                )
            except _S3_ERRORS as error:
                raise _fault("sign a download URL", where.bucket, error) from None
            return Body(size=length, redirect=url)
        if length <= 0:
            return Body(size=0, chunks=iter(()))
        try:
            reply = client.get_object(
                Bucket=where.bucket,
                Key=where.object_key,
                Range=f"bytes={start}-{start + length - 1}",
            )
        except _S3_ERRORS as error:
            if _error_code(error) in ("NoSuchKey", "404"):
                raise StorageError(
                    "The stored bytes of this version are missing from S3; an administrator "
                    "should run 'hatrac verify'."
                ) from None
            raise _fault("read the object", where.bucket, error) from None
        stream = reply["Body"]
        return Body(size=length, chunks=_stream_chunks(stream), close=stream.close)

    def hash_stored(self, key: str, size: int) -> Digests:
        """Stream the object from S3 and hash it (never through a redirect)."""
        where = self.locate(key)
        digests = Digests()
        for block in _read_objects(where.mapping.client(), where.bucket, [where.object_key]):
            digests.update(block)
        return digests

    def exists(self, key: str) -> bool:
        if not self.owns(key):
            return False
        where = self.locate(key)
        return self._exists(where.mapping.client(), where.bucket, where.object_key)

    def delete(self, key: str) -> None:
        where = self.locate(key)
        try:
            self._delete_versions(where.mapping.client(), where)
        except _S3_ERRORS as error:
            raise _fault("delete the object", where.bucket, error) from None

    def _delete_versions(self, client, where: Location) -> None:
        """Remove every version (and delete marker) of exactly this object key."""
        _purge(client, where.bucket, where.object_key, exact=True)

    # -- upload jobs ----------------------------------------------------------------
    # A job's bytes live under a private prefix of the staging bucket (the most
    # general mapping's) until it is finalized: as an S3 multipart upload on
    # PREFIX/assembled when chunks are at least S3's 5 MiB part minimum (chunk
    # N is part N+1), else as one temporary object per chunk. Finalizing
    # completes the multipart upload and streams the assembled bytes into the
    # version's key, hashing them in the same pass; the job's own bytes stay
    # until cancel_job, so a finalization whose version cannot be bound can be
    # retried. Nothing larger than one part is ever held in memory.
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
            except _S3_ERRORS as error:
                raise _fault("start a multipart upload", mapping.bucket, error) from None
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
            except _S3_ERRORS as error:
                if _error_code(error) == "NoSuchUpload":
                    raise JobGone("The upload job was cancelled or finalized.") from None
                raise _fault("store the chunk", job["bucket"], error) from None
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
            except _S3_ERRORS as error:
                # completed by an earlier finalization whose version was not bound?
                if _error_code(error) != "NoSuchUpload":
                    raise _fault("assemble the uploaded chunks", job["bucket"], error) from None
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
            blocks = _read_objects(client, job["bucket"], sources)
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
                else _multipart_uploads(client, job["bucket"], job["staging"])
            )
            for upload in uploads:
                try:
                    client.abort_multipart_upload(
                        Bucket=job["bucket"], Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                except botocore.exceptions.ClientError as error:
                    if _error_code(error) != "NoSuchUpload":
                        raise
            _purge(client, job["bucket"], job["staging"])
        except _S3_ERRORS as error:
            raise _fault("remove the upload job's parts", job["bucket"], error) from None

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
        for upload in _multipart_uploads(client, mapping.bucket, root):
            job = upload["Key"][len(root) :].split("/", 1)[0]
            stamp = upload["Initiated"].timestamp()
            newest[job] = max(newest.get(job, 0.0), stamp)
        return sorted(job for job, stamp in newest.items() if stamp < older_than)

    @staticmethod
    def _exists(client, bucket: str, object_key: str) -> bool:
        try:
            client.head_object(Bucket=bucket, Key=object_key)
        except _S3_ERRORS as error:
            if _error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise _fault("look up the object", bucket, error) from None
        return True

    # -- maintenance ------------------------------------------------------------------
    def _areas(self) -> Iterator[tuple[BucketMapping, str]]:
        """Each distinct (bucket, path prefix) the mappings write to."""
        seen = set()
        for mapping in self.mappings:
            prefix = f"{mapping.path_prefix}/" if mapping.path_prefix else ""
            if (mapping.bucket, prefix) not in seen:
                seen.add((mapping.bucket, prefix))
                yield mapping, prefix

    def _stored(self) -> Iterator[tuple[BucketMapping, dict]]:
        for mapping, prefix in self._areas():
            paginator = mapping.client().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=mapping.bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    if f"/{JOBS_DIRECTORY}/" not in f"/{entry['Key']}":
                        yield mapping, entry

    def keys(self) -> Iterator[str]:
        """Every storage key with bytes in the configured buckets (jobs excluded)."""
        for mapping, entry in self._stored():
            yield f"{mapping.bucket}/{entry['Key']}"

    def open_uploads(self) -> list[str]:
        """Multipart uploads in progress (plain PUTs being received and upload jobs)."""
        found = []
        for mapping, prefix in self._areas():
            uploads = _multipart_uploads(mapping.client(), mapping.bucket, prefix)
            found.extend(f"{mapping.bucket}/{u['Key']}" for u in uploads)
        return found

    def find_orphans(self, live_keys: set[str], older_than: float) -> dict[str, list[str]]:
        """Objects under our prefixes that no live version refers to, and multipart
        uploads of plain PUTs whose abort failed (S3 unreachable then), as
        ``BUCKET/KEY``. Staged chunks of jobs are left to job expiry
        (``cancel_job``)."""
        objects = []
        for mapping, entry in list(self._stored()):
            key = f"{mapping.bucket}/{entry['Key']}"
            if key not in live_keys and entry["LastModified"].timestamp() < older_than:
                objects.append(key)
        uploads = []
        for mapping, prefix in self._areas():
            for upload in _multipart_uploads(mapping.client(), mapping.bucket, prefix):
                if f"/{JOBS_DIRECTORY}/" in f"/{upload['Key']}":
                    continue  # upload jobs expire through the model
                if upload["Initiated"].timestamp() < older_than:
                    uploads.append(f"{mapping.bucket}/{upload['Key']}")
        return {"objects": sorted(objects), "multipart_uploads": sorted(uploads)}

    def remove_orphan(self, category: str, key: str) -> None:
        bucket, object_key = key.split("/", 1)
        mapping = self.by_bucket[bucket]
        if category == "multipart_uploads":
            # keys are unique per version: every upload on this key is the stale one
            client = mapping.client()
            where = Location(mapping, bucket, object_key)
            for upload in _multipart_uploads(client, bucket, object_key):
                if upload["Key"] == object_key:
                    self._abort(client, where, upload["UploadId"])
        else:
            _purge(mapping.client(), bucket, object_key, exact=True)


def _stream_chunks(stream) -> Iterator[bytes]:
    try:
        while True:
            block = stream.read(BLOCK_SIZE)
            if not block:
                break
            yield block
    finally:
        stream.close()


def _chunk_fault(bucket: str, error: BaseException) -> HatracError:
    """A job's staged bytes could not be read: gone (a racing finalization or a
    cancellation released them) or the store failed."""
    if _error_code(error) in ("NoSuchKey", "404"):
        return JobGone("The upload job was finalized (or cancelled) by another request.")
    return _fault("read the uploaded chunks", bucket, error)


def _read_objects(client, bucket: str, object_keys: list[str]) -> Iterator[bytes]:
    """The bytes of several objects, one after the other, in blocks."""
    for object_key in object_keys:
        try:
            reply = client.get_object(Bucket=bucket, Key=object_key)
            yield from _stream_chunks(reply["Body"])
        except _S3_ERRORS as error:
            raise _chunk_fault(bucket, error) from None


def _prefetch_objects(client, bucket: str, object_keys: list[str], ahead: int) -> Iterator[bytes]:
    """The bytes of several small objects in order, ``ahead`` of them fetched in parallel."""

    def fetch(object_key: str) -> bytes:
        try:
            reply = client.get_object(Bucket=bucket, Key=object_key)
            return reply["Body"].read()
        except _S3_ERRORS as error:
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


def _part_etags(client, bucket: str, key: str, upload_id: str) -> dict[int, str]:
    """Part number -> ETag of the parts S3 holds for one multipart upload."""
    held: dict[int, str] = {}
    paginator = client.get_paginator("list_parts")
    for page in paginator.paginate(Bucket=bucket, Key=key, UploadId=upload_id):
        for part in page.get("Parts", []):
            held[part["PartNumber"]] = part["ETag"]
    return held


def _multipart_uploads(client, bucket: str, prefix: str) -> list[dict]:
    found = []
    paginator = client.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        found.extend(page.get("Uploads", []))
    return found


def _purge(client, bucket: str, prefix: str, exact: bool = False) -> None:
    """Delete every version and delete marker under ``prefix`` (or of exactly it)."""
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        doomed = [
            {"Key": entry["Key"], "VersionId": entry["VersionId"]}
            for entry in page.get("Versions", []) + page.get("DeleteMarkers", [])
            if not exact or entry["Key"] == prefix
        ]
        for start in range(0, len(doomed), 1000):
            client.delete_objects(
                Bucket=bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True}
            )

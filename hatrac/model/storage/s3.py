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

import logging
from typing import TYPE_CHECKING, Iterable, Iterator, Optional

import botocore.exceptions

from .base import Body, Digests, Staged, Storage, StorageError
from .s3_buckets import (
    PART_SIZE,
    S3_ERRORS,
    BucketMapping,
    Location,
    S3ConfigError,
    error_code,
    fault,
    multipart_uploads,
    prefix_matches,
    purge,
    stream_chunks,
    validate_s3_config,
)
from .s3_jobs import JOBS_DIRECTORY, S3UploadJobs, read_objects

if TYPE_CHECKING:
    from botocore.client import BaseClient

logger = logging.getLogger(__name__)


class S3Storage(S3UploadJobs, Storage):
    """Bytes as objects in S3 buckets chosen by name prefix."""

    name = "amazons3"
    hashes_chunks = True  # a part is spooled and hashed before it is sent

    def __init__(self, s3_config: dict, service_prefix: str = "/hatrac") -> None:
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
                if prefix_matches(mapping.prefix, url_path) or prefix_matches(mapping.prefix, name):
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
                code = error_code(error)
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
            except S3_ERRORS:
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
            if isinstance(error, S3_ERRORS):
                raise fault("store the object", where.bucket, error) from None
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
        except S3_ERRORS as error:
            self._abort(client, where, upload_id)
            self._delete_versions(client, where)  # in case it completed after all
            raise fault("store the object", where.bucket, error) from None

    def discard(self, staged: Staged) -> None:
        where = self.locate(staged.key)
        client = where.mapping.client()
        upload_id = staged.handle.get("upload_id")
        if upload_id is not None:
            self._abort(client, where, upload_id)
        else:
            try:
                self._delete_versions(client, where)
            except S3_ERRORS:
                logger.exception("could not discard %s; the orphan sweep will", staged.key)

    def _abort(self, client: BaseClient, where: Location, upload_id: str) -> None:
        try:
            client.abort_multipart_upload(
                Bucket=where.bucket, Key=where.object_key, UploadId=upload_id
            )
        except S3_ERRORS as error:
            if error_code(error) != "NoSuchUpload":
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
            except S3_ERRORS as error:
                raise fault("sign a download URL", where.bucket, error) from None
            return Body(size=length, redirect=url)
        if length <= 0:
            return Body(size=0, chunks=iter(()))
        try:
            reply = client.get_object(
                Bucket=where.bucket,
                Key=where.object_key,
                Range=f"bytes={start}-{start + length - 1}",
            )
        except S3_ERRORS as error:
            if error_code(error) in ("NoSuchKey", "404"):
                raise StorageError(
                    "The stored bytes of this version are missing from S3; an administrator "
                    "should run 'hatrac verify'."
                ) from None
            raise fault("read the object", where.bucket, error) from None
        stream = reply["Body"]
        return Body(size=length, chunks=stream_chunks(stream), close=stream.close)

    def hash_stored(self, key: str, size: int) -> Digests:
        """Stream the object from S3 and hash it (never through a redirect)."""
        where = self.locate(key)
        digests = Digests()
        for block in read_objects(where.mapping.client(), where.bucket, [where.object_key]):
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
        except S3_ERRORS as error:
            raise fault("delete the object", where.bucket, error) from None

    def _delete_versions(self, client: BaseClient, where: Location) -> None:
        """Remove every version (and delete marker) of exactly this object key."""
        purge(client, where.bucket, where.object_key, exact=True)

    @staticmethod
    def _exists(client: BaseClient, bucket: str, object_key: str) -> bool:
        try:
            client.head_object(Bucket=bucket, Key=object_key)
        except S3_ERRORS as error:
            if error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise fault("look up the object", bucket, error) from None
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
            uploads = multipart_uploads(mapping.client(), mapping.bucket, prefix)
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
            for upload in multipart_uploads(mapping.client(), mapping.bucket, prefix):
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
            for upload in multipart_uploads(client, bucket, object_key):
                if upload["Key"] == object_key:
                    self._abort(client, where, upload["UploadId"])
        else:
            purge(mapping.client(), bucket, object_key, exact=True)

"""Upstream's bytes read where they already are: the in-place storage of an import.

A deployment imported from upstream Hatrac (``hatrac import-upstream``) keeps
its bytes in upstream's layout, which addresses them by name: a file
``<storage_path>/<name>:<version>``, or an S3 key derived from the name, read
with an S3 ``VersionId``. This backend serves those bytes. It sits behind our
own backend in an overlay chain (new versions are written in our layout), and
it never writes or deletes: upstream's tree stays exactly as upstream left it,
so a rollback to upstream finds every byte.

Storage keys of this backend begin with ``@LABEL/`` (a label per configured
upstream backend, so an overlay of several upstream backends stays
unambiguous):

* filesystem: ``@LABEL/<path below storage_path>``;
* S3: ``@LABEL/<bucket>/<percent-encoded VersionId, or empty>/<object key>``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional
from urllib.parse import quote, unquote

try:  # the s3 extra: needed only for upstream sites whose bytes are in S3
    import boto3
    import botocore.config
    import botocore.exceptions
except ImportError:  # a filesystem site's layout is read without it
    boto3 = None

from .base import BLOCK_SIZE, Body, Digests, Staged, Storage, StorageError
from .filesystem import open_file_body

if TYPE_CHECKING:
    from botocore.client import BaseClient


def filesystem_key(label: str, relative_path: str) -> str:
    """The storage key of a file below an upstream ``storage_path``."""
    return f"@{label}/{relative_path}"


def s3_key(label: str, bucket: str, object_key: str, version_id: Optional[str]) -> str:
    """The storage key of an S3 object (version) of an upstream deployment."""
    return f"@{label}/{bucket}/{quote(version_id or '', safe='')}/{object_key}"


class UpstreamLayoutStorage(Storage):
    """Read-only access to one upstream backend's bytes, in upstream's layout."""

    name = "upstream"

    def __init__(
        self,
        label: str,
        storage_path: Optional[str] = None,
        buckets: Optional[dict] = None,
    ) -> None:
        if not label or "/" in label:
            raise StorageError("an upstream backend needs a 'label' without '/'")
        if (storage_path is None) == (buckets is None):
            raise StorageError("an upstream backend needs either storage_path or upstream_s3")
        self.label = label
        self.prefix = f"@{label}/"
        self.root = Path(storage_path) if storage_path is not None else None
        self.buckets = dict(buckets or {})
        self._clients: dict = {}

    # -- addressing -----------------------------------------------------------------
    def owns(self, key: str) -> bool:
        return key.startswith(self.prefix)

    def path_of(self, key: str) -> Path:
        """The file of a filesystem key (refusing anything that could leave the root)."""
        if self.root is None or not self.owns(key):
            raise ValueError(f"storage key {key!r} is not a file of upstream backend {self.label}")
        relative = key[len(self.prefix) :]
        parts = relative.split("/")
        if any(part in ("", ".", "..") for part in parts) or "\0" in relative:
            raise ValueError(f"storage key {key!r} is not a safe path")
        return self.root.joinpath(*parts)

    def _s3(self, key: str) -> tuple:
        if not self.buckets or not self.owns(key):
            raise ValueError(f"storage key {key!r} is not an S3 object of backend {self.label}")
        bucket, _, rest = key[len(self.prefix) :].partition("/")
        version, _, object_key = rest.partition("/")
        settings = self.buckets.get(bucket)
        if settings is None or not object_key:
            raise StorageError(f"storage key {key!r} names a bucket this backend was not given")
        return bucket, unquote(version) or None, object_key, settings

    def client(self, bucket: str) -> BaseClient:
        found = self._clients.get((os.getpid(), bucket))
        if found is None:
            settings = self.buckets[bucket]
            session = boto3.session.Session(**settings.get("session_config", {}))
            arguments = dict(settings.get("s3_client_kwargs", {}))
            tuning = arguments.pop("config", {})
            if isinstance(tuning, dict):
                tuning = dict({"signature_version": "s3v4"}, **tuning)
                arguments["config"] = botocore.config.Config(**tuning)
            if settings.get("region_name"):
                arguments.setdefault("region_name", settings["region_name"])
            found = session.client("s3", **arguments)
            self._clients[(os.getpid(), bucket)] = found
        return found

    def _object_arguments(self, bucket: str, version: Optional[str], object_key: str) -> dict:
        arguments = {"Bucket": bucket, "Key": object_key}
        if version is not None:
            arguments["VersionId"] = version
        return arguments

    # -- reading --------------------------------------------------------------------
    def stored_size(self, key: str) -> Optional[int]:
        """The size of the stored bytes, or None when there are none."""
        if self.root is not None:
            try:
                return self.path_of(key).stat().st_size
            except FileNotFoundError:
                return None
            except OSError as error:
                raise StorageError(f"cannot read from storage: {error.strerror}") from None
        bucket, version, object_key, _ = self._s3(key)
        try:
            reply = self.client(bucket).head_object(
                **self._object_arguments(bucket, version, object_key)
            )
        except botocore.exceptions.ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound", "NoSuchVersion", "400", "405"):
                return None
            raise StorageError(f"S3 bucket {bucket} failed: {code}") from None
        except botocore.exceptions.BotoCoreError as error:
            raise StorageError(f"S3 bucket {bucket} cannot be reached: {error}") from None
        return int(reply["ContentLength"])

    def exists(self, key: str) -> bool:
        if not self.owns(key):
            return False
        return self.stored_size(key) is not None

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
        if length is None:
            length = size - start
        if self.root is not None:
            return open_file_body(self.path_of(key), start, length, " from upstream's directory")
        bucket, version, object_key, settings = self._s3(key)
        client = self.client(bucket)
        arguments = self._object_arguments(bucket, version, object_key)
        threshold = settings.get("presigned_url_threshold")
        if threshold and size > threshold and start == 0 and length == size:
            params = dict(arguments)
            if content_type:
                params["ResponseContentType"] = content_type
            if content_disposition:
                params["ResponseContentDisposition"] = content_disposition
            expires = settings.get("presigned_url_expiration_secs") or 300
            url = client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)
            return Body(size=length, redirect=url)
        if length <= 0:
            return Body(size=0, chunks=iter(()))
        try:
            reply = client.get_object(Range=f"bytes={start}-{start + length - 1}", **arguments)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise StorageError(
                f"cannot read {object_key} from S3 bucket {bucket}: {error}"
            ) from None
        stream = reply["Body"]

        def chunks() -> Iterable[bytes]:
            while True:
                block = stream.read(BLOCK_SIZE)
                if not block:
                    return
                yield block

        return Body(size=length, chunks=chunks(), close=stream.close)

    def hash_stored(self, key: str, size: int) -> Digests:
        """Re-read the bytes (never through a presigned redirect) and hash them."""
        digests = Digests()
        body = self.open(key, size, 0, size) if self.root is not None else None
        if body is None:
            bucket, version, object_key, _ = self._s3(key)
            try:
                reply = self.client(bucket).get_object(
                    **self._object_arguments(bucket, version, object_key)
                )
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
                raise StorageError(f"cannot read {object_key} from S3: {error}") from None
            stream = reply["Body"]
            try:
                for block in iter(lambda: stream.read(BLOCK_SIZE), b""):
                    digests.update(block)
            finally:
                stream.close()
            digests.close()
            return digests
        with body.file as handle:
            for block in iter(lambda: handle.read(BLOCK_SIZE), b""):
                digests.update(block)
        digests.close()
        return digests

    # -- never written ----------------------------------------------------------------
    def _read_only(self) -> StorageError:
        return StorageError(
            f"upstream backend {self.label} is read-only; new bytes go to the first backend "
            "of the overlay"
        )

    def stage(self, key: str, blocks: Iterable[bytes]) -> Staged:
        raise self._read_only()

    def commit(self, staged: Staged) -> None:
        raise self._read_only()

    def discard(self, staged: Staged) -> None:
        raise self._read_only()

    def delete(self, key: str) -> None:
        """Deleting a version leaves upstream's bytes in place (a rollback needs them)."""

    def check(self) -> None:
        if self.root is not None and not self.root.is_dir():
            raise StorageError(f"upstream storage_path {self.root} is not a directory")

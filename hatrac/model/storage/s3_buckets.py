"""S3 storage's configuration and the S3 calls its parts share.

``s3_config`` is validated here (every field named in its error), turned
into :class:`BucketMapping` entries (which bucket and key prefix the bytes
of a name prefix go to, with a boto3 client per process), and S3 failures
become the client-facing errors of :func:`fault`. See :mod:`.s3` for the
storage itself and :mod:`.s3_jobs` for its upload jobs.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator, Optional

import boto3
import botocore.config
import botocore.exceptions

from ...errors import BadGateway, HatracError
from .base import BLOCK_SIZE, StorageError

if TYPE_CHECKING:
    from botocore.client import BaseClient

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part (but the last)
PART_SIZE = 8 * 1024 * 1024

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

    def client(self) -> BaseClient:
        """A boto3 S3 client of this process (clients are thread-safe, sessions not)."""
        pid = os.getpid()
        found = self._clients.get(pid)
        if found is None:
            with self._lock:
                found = self._clients.get(pid)
                if found is None:
                    found = make_client(self.session_config, self.client_config)
                    self._clients = {pid: found}
        return found


def make_client(session_config: dict, client_config: dict) -> BaseClient:
    session_arguments = {k: v for k, v in session_config.items() if k in SESSION_ARGUMENTS}
    client_arguments = {k: v for k, v in session_config.items() if k in CLIENT_ARGUMENTS}
    client_arguments.pop("region_name", None)
    client_arguments.update({k: v for k, v in client_config.items() if k in CLIENT_ARGUMENTS})
    tuning = dict(DEFAULT_CLIENT_CONFIG)
    tuning.update({k: v for k, v in client_config.items() if k not in CLIENT_ARGUMENTS})
    session = boto3.session.Session(**session_arguments)
    return session.client("s3", config=botocore.config.Config(**tuning), **client_arguments)


def prefix_matches(prefix: str, name: str) -> bool:
    prefix = prefix.rstrip("/")
    return prefix == "" or name == prefix or name.startswith(prefix + "/")


def error_code(error: BaseException) -> str:
    if isinstance(error, botocore.exceptions.ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def fault(action: str, bucket: str, error: BaseException) -> HatracError:
    """The client-facing error for an S3 failure: 502 for an answer, 503 for no answer."""
    if isinstance(error, HatracError):
        return error
    if isinstance(error, botocore.exceptions.ClientError):
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "")
        return BadGateway(
            f"The object store failed to {action} (bucket {bucket}: {code} {message}); "
            "nothing was changed, please retry."
        )
    return StorageError(
        f"The object store is unreachable or timed out while trying to {action} "
        f"(bucket {bucket}: {error}); nothing was changed, please retry."
    )


S3_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


@dataclass
class Location:
    """Where a storage key's bytes are: its bucket mapping, bucket and object key."""

    mapping: BucketMapping
    bucket: str
    object_key: str


def stream_chunks(stream: BinaryIO) -> Iterator[bytes]:
    try:
        while True:
            block = stream.read(BLOCK_SIZE)
            if not block:
                break
            yield block
    finally:
        stream.close()


def multipart_uploads(client: BaseClient, bucket: str, prefix: str) -> list[dict]:
    found = []
    paginator = client.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        found.extend(page.get("Uploads", []))
    return found


def purge(client: BaseClient, bucket: str, prefix: str, exact: bool = False) -> None:
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

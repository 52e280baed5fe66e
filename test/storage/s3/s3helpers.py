"""What the S3 tests share: fresh buckets of the session's moto server, the service
on one, and the S3 versions a bucket holds (read with boto3)."""

from __future__ import annotations

import base64
import itertools
import os

from servers import MotoServer

import hatrac

ROOT = {"owner": ["admin"], "subtree-owner": ["*"]}
numbers = itertools.count()  # unique bucket, job and version names within a session


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def fresh_bucket(moto: MotoServer) -> str:
    return moto.create_bucket(f"hatrac-s3-{os.getpid()}-{next(numbers)}")


def service_config(tmp_path, s3_config: dict) -> dict:
    """The configuration of a service storing its bytes where ``s3_config`` says."""
    return {
        "data_directory": str(tmp_path / "data"),
        "root_acls": ROOT,
        "storage_backend": "amazons3",
        "s3_config": s3_config,
    }


def make_app(moto, tmp_path, s3_config, **overrides):
    """The service (a Flask app) storing its bytes where ``s3_config`` says."""
    config = service_config(tmp_path, s3_config)
    config["inline_max_size"] = 0  # these tests are about the bytes in S3
    config.update(overrides)
    app = hatrac.create_app(config)
    app.testing = True
    return app


def all_versions(moto, bucket: str) -> list[dict]:
    reply = moto.client().list_object_versions(Bucket=bucket)
    return reply.get("Versions", []) + reply.get("DeleteMarkers", [])

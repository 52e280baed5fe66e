"""Fixtures of the S3 tests (all on the session's moto server): a fresh bucket per
test, the backend on it, and the service storing its bytes in it."""

from __future__ import annotations

import pytest
from clients import FlaskProtocolClient
from s3helpers import fresh_bucket, make_app

from hatrac.model.storage.s3 import S3Storage


@pytest.fixture
def bucket(moto) -> str:
    return fresh_bucket(moto)


@pytest.fixture
def storage(moto, bucket) -> S3Storage:
    backend = S3Storage(moto.s3_config(bucket, bucket_path_prefix="objects"))
    backend.check()
    return backend


@pytest.fixture
def app(moto, tmp_path, bucket):
    application = make_app(moto, tmp_path, moto.s3_config(bucket, bucket_path_prefix="hatrac"))
    yield application
    application.extensions["hatrac"].close()


@pytest.fixture
def client(app) -> FlaskProtocolClient:
    return FlaskProtocolClient(app)

"""Shared fixtures: real databases, real storage, the app and protocol clients.

Every protocol test runs once per pair of directory and storage backends in
:data:`BACKENDS` (SQLite or PostgreSQL; filesystem or S3 through a moto
server); each test gets a private SQLite file or PostgreSQL schema and its
own storage directory or S3 bucket, so tests never depend on each other.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from backends import BACKENDS, DIRECTORY_BACKENDS, TEST_ROOT_ACLS  # noqa: E402, F401
from browser import browser_context, chromium, playwright_driver  # noqa: E402, F401  (browser fixtures)
from clients import FlaskProtocolClient  # noqa: E402
from firefox import firefox, firefox_context  # noqa: E402, F401  (Firefox fixtures)
from servers import MotoServer, PostgresServer  # noqa: E402

import hatrac  # noqa: E402

_schema_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL cluster for the whole run."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto():
    """One moto S3 server (the real S3 API over HTTP on loopback) for the whole run."""
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS, ids=["-".join(pair) for pair in BACKENDS])
def backends(request) -> tuple[str, str]:
    """(directory backend, storage backend) of this test."""
    return request.param


@pytest.fixture
def directory_backend(backends) -> str:
    return backends[0]


@pytest.fixture
def storage_backend(backends) -> str:
    return backends[1]


@pytest.fixture
def make_config(request, tmp_path, directory_backend, storage_backend):
    """Build a config dict on this test's backend; keyword arguments override fields."""

    def build(**overrides) -> dict:
        config = {
            "data_directory": str(tmp_path / "data"),
            "root_acls": TEST_ROOT_ACLS,
        }
        if directory_backend == "postgres":
            server = request.getfixturevalue("postgres")
            schema = f"t{os.getpid()}_{next(_schema_numbers)}"
            config["database_dsn"] = server.new_schema(schema)
        if storage_backend == "amazons3":
            moto = request.getfixturevalue("moto")
            bucket = moto.create_bucket(f"hatrac-test-{os.getpid()}-{next(_schema_numbers)}")
            config["storage_backend"] = "amazons3"
            config["s3_config"] = moto.s3_config(bucket, bucket_path_prefix="hatrac")
        config.update(overrides)
        return config

    return build


@pytest.fixture
def config(make_config) -> dict:
    return make_config()


@pytest.fixture
def app(config):
    application = hatrac.create_app(config)
    application.testing = True
    yield application
    application.extensions["hatrac"].close()


@pytest.fixture
def client(app) -> FlaskProtocolClient:
    """A protocol client over the Flask test client; ``user=`` sets REMOTE_USER."""
    return FlaskProtocolClient(app)


@pytest.fixture
def ns(client) -> str:
    """A fresh namespace owned by 'alice', for this test only."""
    name = f"/hatrac/test{next(_schema_numbers)}_{os.getpid()}"
    reply = client.put(
        name, user="alice", headers={"Content-Type": "application/x-hatrac-namespace"}
    )
    assert reply.status == 201, reply.text
    return name

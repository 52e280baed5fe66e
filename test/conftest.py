"""Shared fixtures: real databases, real storage, the app and protocol clients.

Every protocol test runs once per directory backend (``sqlite`` and
``postgres``); each test gets a private SQLite file or PostgreSQL schema and
its own storage directory, so tests never depend on each other.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from clients import FlaskProtocolClient  # noqa: E402
from servers import PostgresServer  # noqa: E402

import hatrac  # noqa: E402

DIRECTORY_BACKENDS = ["sqlite", "postgres"]
TEST_ROOT_ACLS = {"owner": ["admin"], "create": ["*"], "read": ["*"]}

_schema_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL cluster for the whole run."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=DIRECTORY_BACKENDS)
def directory_backend(request) -> str:
    return request.param


@pytest.fixture
def make_config(request, tmp_path, directory_backend):
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

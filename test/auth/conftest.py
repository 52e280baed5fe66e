"""Fixtures of the authentication tests: fast hashes, accounts, live gunicorn servers."""

from __future__ import annotations

import pytest
from servers import GunicornServer

import hatrac
from hatrac.auth.accounts import Accounts
from hatrac.config import load_config
from hatrac.model.directory import open_directory

# cheap hashes and a small failure budget keep the tests fast and deterministic
AUTH_SETTINGS = {
    "password_hash_rounds": 1000,
    "login_max_failures_per_account": 5,
    "login_max_failures_per_address": 20,
    "basic_cache_secs": 30,
}


@pytest.fixture(
    params=[("sqlite", "filesystem"), ("postgres", "filesystem")], ids=["sqlite", "postgres"]
)
def backends(request) -> tuple[str, str]:
    """Authentication depends on the database only: both databases, one storage."""
    return request.param


@pytest.fixture
def auth_config(make_config) -> dict:
    return make_config(**AUTH_SETTINGS)


@pytest.fixture
def accounts(auth_config):
    """Accounts on the test's database, as the command line would open them."""
    config = load_config(auth_config)
    directory = open_directory(config.database_dsn)
    directory.initialize(config.root_acls)
    yield Accounts(directory, config)
    directory.close()


@pytest.fixture
def auth_app(auth_config, accounts):
    application = hatrac.create_app(auth_config)
    application.testing = True
    yield application
    application.extensions["hatrac"].close()


@pytest.fixture
def start_server(tmp_path):
    """start_server(config, workers=2) -> a running GunicornServer, stopped after the test."""
    started = []

    def start(config: dict, workers: int = 2) -> GunicornServer:
        server = GunicornServer(config, tmp_path, workers=workers, threads=2).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(auth_config, accounts, start_server) -> GunicornServer:
    return start_server(auth_config)

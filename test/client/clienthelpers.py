"""Helpers of the client tests: real gunicorn servers with accounts, and
:class:`Runner`, which runs ``hatrac-client`` with a private config directory.

``hc(...)`` runs the client in this process (its ``main``) and returns
``(exit code, stdout, stderr)``; ``hc_process(...)`` starts it as a real
subprocess (``python -m hatrac.client``), for the SIGKILL tests.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from backends import BACKENDS  # noqa: F401  (re-exported to conftest.py)
from servers import GunicornServer

from hatrac.auth.accounts import Accounts
from hatrac.client import main
from hatrac.config import load_config
from hatrac.model.directory import open_directory

ROOT_ACLS = {"owner": ["admin"], "create": ["alice", "bob"], "read": ["*"]}
PASSWORD = "correct horse"
_numbers = itertools.count()


def server_config(request, directory: Path, directory_backend: str, storage: str, **extra):
    config = {
        "data_directory": str(directory / "data"),
        "root_acls": ROOT_ACLS,
        "password_hash_rounds": 1000,
        **extra,
    }
    if directory_backend == "postgres":
        postgres = request.getfixturevalue("postgres")
        config["database_dsn"] = postgres.new_schema(f"cl_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    if storage == "amazons3":
        moto = request.getfixturevalue("moto")
        bucket = moto.create_bucket(f"hatrac-client-{os.getpid()}-{next(_numbers)}")
        config["storage_backend"] = "amazons3"
        config["s3_config"] = moto.s3_config(bucket, bucket_path_prefix="hatrac")
    return config


def open_accounts(config: dict) -> Accounts:
    loaded = load_config(config)
    directory = open_directory(loaded.database_dsn)
    directory.initialize(loaded.root_acls)
    return Accounts(directory, loaded)


class Live:
    """A running server with users alice and bob (password :data:`PASSWORD`)."""

    def __init__(self, server: GunicornServer, accounts: Accounts, backend: str):
        self.server = server
        self.accounts = accounts
        self.backend = backend

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def base(self) -> str:
        return self.server.url + "/hatrac"


def start_live(request, tmp_path_factory, pair, **extra) -> Live:
    directory = tmp_path_factory.mktemp("client-live")
    config = server_config(request, directory, *pair, **extra)
    accounts = open_accounts(config)
    for user in ("alice", "bob"):
        accounts.add_user(user, PASSWORD)
    server = GunicornServer(config, directory, workers=2, threads=4).start()
    return Live(server, accounts, "-".join(pair))


class Runner:
    """Runs the client with one config directory (its remotes and credentials)."""

    def __init__(self, config_dir: Path, capsys, monkeypatch):
        self.config_dir = config_dir
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def __call__(self, *argv: str, stdin: bytes = None) -> tuple[int, str, str]:
        self.monkeypatch.setenv("HATRAC_CLIENT_CONFIG", str(self.config_dir))
        if stdin is not None:
            import io

            stream = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
            self.monkeypatch.setattr(sys, "stdin", stream)
        self.capsys.readouterr()
        code = main([str(a) for a in argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str, expect: int = 0) -> list[dict]:
        code, out, err = self(*argv, "--json")
        assert code == expect, (code, out, err)
        return [json.loads(line) for line in out.splitlines()]

    def cookie(self, live: Live) -> str:
        """The session cookie this client stored for ``live``."""
        stored = json.loads((self.config_dir / "credentials.json").read_text())
        return stored[live.url]["cookie"]

    def process(self, *argv: str, **kwargs) -> subprocess.Popen:
        environment = dict(os.environ, HATRAC_CLIENT_CONFIG=str(self.config_dir))
        return subprocess.Popen(
            [sys.executable, "-m", "hatrac.client", *map(str, argv)],
            env=environment,
            **{"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs},
        )


def logged_in(live: Live, config_dir: Path, capsys, monkeypatch, user: str = "alice") -> Runner:
    runner = Runner(config_dir, capsys, monkeypatch)
    assert runner("remote", "add", "t", live.base)[0] == 0
    code, out, err = runner(
        "login", "t", "--user", user, "--password-stdin", stdin=PASSWORD.encode()
    )
    assert code == 0, err
    return runner

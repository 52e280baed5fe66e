"""Defects 2 and 11 of issue 13: a PostgreSQL that breaks connections, and
one that refuses us for good.

* every broken connection (at a statement, at COMMIT, pooled connections
  killed while idle) becomes a retry on a fresh connection or a 503 with
  Retry-After, never a 500, and the service works again without a restart;
* a COMMIT whose connection breaks has an unknown outcome: the client gets
  201 if the version was in fact committed, 503 (and no version, bytes
  reclaimed) if it was not; never a duplicate or a version without bytes;
* a wrong credential, database or host: one line naming the server's reason
  and what to check, exit 1, no traceback, no retry loop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psycopg2
import psycopg2.extensions
import pytest
from clients import FlaskProtocolClient
from servers import free_port, gunicorn_start_attempt

import hatrac
from hatrac.model.directory.postgres import PostgresDatabase

PG = [("postgres", "filesystem")]


def _terminate(postgres, pid: int) -> None:
    postgres.psql(f"SELECT pg_terminate_backend({int(pid)})")


@pytest.mark.parametrize("backends", PG, indirect=True)
def test_killed_connections_are_replaced(client, app, postgres):
    assert client.put("/hatrac/before", data=b"1", user="alice").status == 201
    # kill every connection of the test database (the pool's, idle)
    postgres.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = 'hatrac_test' AND pid <> pg_backend_pid()"
    )
    for index in range(12):
        assert client.put(f"/hatrac/after{index}", data=b"2", user="alice").status == 201
        assert client.get("/hatrac/before", user="alice").body == b"1"


@pytest.mark.parametrize("backends", PG, indirect=True)
@pytest.mark.parametrize("committed", [False, True])
@pytest.mark.parametrize("payload", [b"payload", b"p" * 70_000], ids=["inline", "file"])
def test_commit_with_unknown_outcome(client, app, postgres, monkeypatch, committed, payload):
    state = app.extensions["hatrac"]
    storage = state.storage
    original = PostgresDatabase.commit
    armed = {"on": True}

    def breaking_commit(conn):
        in_write = conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INTRANS
        if not armed["on"] or not in_write:
            return original(conn)
        armed["on"] = False
        if committed:
            original(conn)  # the COMMIT reached the server...
        _terminate(postgres, conn.info.backend_pid)  # ...and the connection broke
        original(conn) if not committed else conn.cursor().execute("SELECT 1")

    execute_prepared = PostgresDatabase.execute_prepared

    def breaking_execute(self, cursor, sql, params, before=None, after=None):
        # a last statement that carries its COMMIT (Transaction.finish) breaks likewise
        if not armed["on"] or after != "COMMIT":
            return execute_prepared(self, cursor, sql, params, before, after)
        armed["on"] = False
        if committed:
            execute_prepared(self, cursor, sql, params, before, after)
        _terminate(postgres, cursor.connection.info.backend_pid)
        if committed:
            cursor.execute("SELECT 1")
        return execute_prepared(self, cursor, sql, params, before, after)

    monkeypatch.setattr(PostgresDatabase, "commit", staticmethod(breaking_commit))
    monkeypatch.setattr(PostgresDatabase, "execute_prepared", breaking_execute)
    reply = client.put("/hatrac/unsure", data=payload, user="alice")
    monkeypatch.undo()
    assert not armed["on"], "the fault was not injected"
    versions = client.get("/hatrac/unsure;versions", user="alice")
    stored = sorted(p.name for p in storage.objects.glob("*/*/*"))
    stored += [
        row[0] for row in state.directory.run(lambda tx: tx.all("SELECT * FROM inline_bytes"))
    ]
    if committed:
        assert reply.status == 201, reply.text
        assert versions.json() == [reply.headers["Location"]]
        assert client.get("/hatrac/unsure", user="alice").body == payload
        assert len(stored) == 1
    else:
        assert reply.status == 503, reply.text
        assert int(reply.headers["Retry-After"]) > 0
        assert versions.status == 404
        assert stored == []  # the bytes of a version that was not made are reclaimed
    # and the service goes on
    assert client.put("/hatrac/unsure", data=b"again", user="alice").status == 201


def test_connection_errors_are_classified():
    database = PostgresDatabase("dbname=x")
    assert database.is_connection_error(psycopg2.DatabaseError("server closed the connection"))
    assert database.is_connection_error(psycopg2.OperationalError("could not connect"))
    assert not database.is_connection_error(psycopg2.IntegrityError("duplicate"))
    assert not database.is_connection_error(ValueError("x"))


def _bad_dsns(postgres):
    good = postgres.dsn()
    return [
        ("wrong password", good + " user=nobody_here password=wrong", "nobody_here"),
        ("unknown database", good.replace("dbname=hatrac_test", "dbname=no_such_db"), "no_such_db"),
        ("unknown host", "host=no-such-host.invalid dbname=x user=x", "no-such-host.invalid"),
    ]


def test_bad_dsn_is_one_line_exit_1_no_retries(postgres, tmp_path):
    for what, dsn, named in _bad_dsns(postgres):
        config = tmp_path / "hatrac_config.json"
        config.write_text(json.dumps({"data_directory": str(tmp_path), "database_dsn": dsn}))
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "hatrac.cli", "--config", str(config), "init-db"],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=60,
        )
        took = time.monotonic() - started
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1, (what, result.stderr)
        assert len(lines) == 1 and "Traceback" not in result.stderr, (what, result.stderr)
        assert named in lines[0] and "check" in lines[0], (what, lines[0])
        assert "wrong" not in lines[0].replace("wrong password", "")  # no password shown
        assert took < 10, f"{what}: {took:.1f} s (a retry loop?)"


def test_readiness_reports_why_the_database_refuses(postgres, tmp_path):
    config = {"data_directory": str(tmp_path), "database_dsn": postgres.dsn()}
    app = hatrac.create_app(config)
    try:
        state = app.extensions["hatrac"]
        # the credentials stop working while the service runs
        state.directory.database.close()
        state.directory.database.dsn = postgres.dsn() + " user=nobody_here password=wrong"
        ready = FlaskProtocolClient(app).get("/hatrac-health/ready")
        assert ready.status == 503
        assert "nobody_here" in ready.json()["database"], ready.text
    finally:
        app.extensions["hatrac"].close()


def test_gunicorn_start_up_with_a_bad_credential(postgres, tmp_path):
    config = tmp_path / "hatrac_config.json"
    dsn = postgres.dsn() + " user=nobody_here password=wrong"
    config.write_text(json.dumps({"data_directory": str(tmp_path), "database_dsn": dsn}))
    started = time.monotonic()
    result = gunicorn_start_attempt(config, tmp_path)
    assert result.returncode != 0
    assert time.monotonic() - started < 20, "a retry loop?"
    reasons = [line for line in result.stderr.splitlines() if "nobody_here" in line]
    assert reasons and "check" in reasons[0], result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "wrong" not in result.stderr


def test_job_sweep_with_the_database_down_logs_one_line(postgres, tmp_path, caplog):
    config = {
        "data_directory": str(tmp_path),
        "database_dsn": postgres.dsn(),
        "database_max_retries": 1,
    }
    app = hatrac.create_app(config)
    state = app.extensions["hatrac"]
    try:
        state.directory.database.close()
        state.directory.database.dsn = f"host=127.0.0.1 port={free_port()} dbname=x user=x"
        type(state.model)._next_job_sweep = 0.0
        with caplog.at_level("WARNING", logger="hatrac"):
            state.model.maybe_sweep_jobs()  # never raises
        swept = [r for r in caplog.records if "upload-job sweep" in r.getMessage()]
        assert swept and "refused" in swept[0].getMessage()
        assert swept[0].exc_info is None, "a traceback for a database that is down"
    finally:
        state.close()

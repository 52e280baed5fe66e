"""Bad deployments stop startup with one clear line; schema upgrades are all or nothing."""

from __future__ import annotations

import io
import json
import os
import sqlite3

import psycopg2
import pytest
from servers import free_port, gunicorn_start_attempt

import hatrac
from hatrac.config import ConfigError, StartupError
from hatrac.model.directory import open_directory, schema
from hatrac.wsgi import FullPathApplication

DATABASE_ERRORS = (sqlite3.Error, psycopg2.Error)


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, text
    return text


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        hatrac.create_app(str(tmp_path / "absent.json"))
    assert "does not exist" in one_line(caught.value)


def test_unreadable_config_file(tmp_path):
    path = tmp_path / "hatrac_config.json"
    if os.geteuid() == 0:
        path.mkdir()  # root reads any file; a directory cannot be read as one
    else:
        path.write_text("{}")
        path.chmod(0)
    with pytest.raises(ConfigError) as caught:
        hatrac.create_app(str(path))
    assert "cannot be read" in one_line(caught.value)


def test_unknown_field_and_wrong_type(tmp_path):
    with pytest.raises(ConfigError) as caught:
        hatrac.create_app({"data_directory": str(tmp_path), "databse_dsn": "x"})
    assert "databse_dsn" in one_line(caught.value)
    with pytest.raises(ConfigError) as caught:
        hatrac.create_app({"data_directory": str(tmp_path), "read_only": "yes"})
    assert "'read_only' must be true or false" in one_line(caught.value)


def test_database_unreachable_at_start_answers_503(tmp_path, caplog):
    """A PostgreSQL that is down (not one that refuses us) does not stop the
    service: it answers 503 until the database is back (see
    test/faults/test_database_down_at_start.py for the recovery)."""
    port = free_port()  # nothing listens there
    with caplog.at_level("WARNING", logger="hatrac"):
        app = hatrac.create_app(
            {
                "data_directory": str(tmp_path),
                "database_dsn": f"host=127.0.0.1 port={port} dbname=h user=u password=hush",
                "database_max_retries": 1,
            }
        )
    warned = [r.getMessage() for r in caplog.records if "not reachable yet" in r.getMessage()]
    assert warned and f"127.0.0.1:{port}" in warned[0] and "refused" in warned[0]
    assert "hush" not in caplog.text
    reply = app.test_client().get("/hatrac/")
    assert reply.status_code == 503 and int(reply.headers["Retry-After"]) > 0
    assert "hush" not in reply.get_data(as_text=True)
    assert app.test_client().get("/hatrac-health/live").status_code == 200


def test_sqlite_directory_not_creatable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StartupError) as caught:
        hatrac.create_app(
            {
                "data_directory": str(tmp_path / "d"),
                "database_dsn": f"sqlite:{blocker}/sub/h.sqlite3",
            }
        )
    assert "database" in one_line(caught.value)


def test_storage_not_writable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StartupError) as caught:
        hatrac.create_app(
            {"data_directory": str(tmp_path / "d"), "storage_path": str(blocker / "storage")}
        )
    message = one_line(caught.value)
    assert message.startswith("storage:") and "storage_path" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_storage_directory_read_only(tmp_path):
    storage = tmp_path / "storage"
    for sub in ("objects", "tmp", "jobs"):
        (storage / sub).mkdir(parents=True)
    for path in [storage, *storage.iterdir()]:
        path.chmod(0o555)
    try:
        with pytest.raises(StartupError) as caught:
            hatrac.create_app({"data_directory": str(tmp_path / "d"), "storage_path": str(storage)})
        assert "not writable" in one_line(caught.value)
    finally:
        for path in [storage, *storage.iterdir()]:
            path.chmod(0o755)


def test_gunicorn_refuses_to_start_with_a_bad_config(tmp_path):
    path = tmp_path / "hatrac_config.json"
    path.write_text(json.dumps({"no_such_field": 1}))
    result = gunicorn_start_attempt(path, tmp_path)
    assert result.returncode != 0
    assert "unknown config field(s): no_such_field" in result.stderr


def test_wsgi_entry_point_reports_a_bad_config_and_recovers(tmp_path, monkeypatch):
    path = tmp_path / "hatrac_config.json"
    path.write_text(json.dumps({"bogus": True}))
    monkeypatch.setenv("HATRAC_CONFIG", str(path))
    monkeypatch.setattr("hatrac.wsgi.RETRY_SECONDS", 0.0)
    application = FullPathApplication()
    errors = io.StringIO()
    statuses = []

    def start_response(status, headers):
        statuses.append(status)

    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "/hatrac",
        "PATH_INFO": "/",
        "REQUEST_URI": "/hatrac/",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": errors,
    }
    body = b"".join(application(dict(environ), start_response))
    assert statuses[-1].startswith("503") and b"error log" in body
    logged = [json.loads(line) for line in errors.getvalue().strip().splitlines()]
    assert len(logged) == 1 and logged[0]["kind"] == "error" and "exception" not in logged[0]
    assert logged[0]["message"] == (
        "hatrac: cannot start: unknown config field(s): bogus; see "
        "docs/configuration.md for the fields this service knows"
    )
    # the admin fixes the file: the next request starts the service, no restart
    path.write_text(
        json.dumps({"data_directory": str(tmp_path / "d"), "root_acls": {"read": ["*"]}})
    )
    body = b"".join(application(dict(environ), start_response))
    assert statuses[-1].startswith("200"), body
    # SCRIPT_NAME was folded back into the path the app routes on
    live = dict(
        environ, SCRIPT_NAME="/hatrac-health", PATH_INFO="/live", REQUEST_URI="/hatrac-health/live"
    )
    assert b"alive" in b"".join(application(live, start_response))


def test_config_file_from_the_request_environ(tmp_path, monkeypatch):
    """Apache's SetEnv HATRAC_CONFIG reaches the request environ only."""
    from hatrac.wsgi import config_source

    monkeypatch.delenv("HATRAC_CONFIG", raising=False)
    assert config_source({"HATRAC_CONFIG": "/etc/hatrac/c.json"}) == "/etc/hatrac/c.json"
    monkeypatch.setenv("HATRAC_CONFIG", "/srv/c.json")
    assert config_source({"HATRAC_CONFIG": "/etc/hatrac/c.json"}) == "/srv/c.json"


@pytest.mark.parametrize("directory_backend_name", ["sqlite", "postgres"])
def test_failed_migration_leaves_the_schema_untouched(
    request, tmp_path, monkeypatch, directory_backend_name
):
    if directory_backend_name == "postgres":
        dsn = request.getfixturevalue("postgres").new_schema(f"mig_{os.getpid()}_{free_port()}")
    else:
        dsn = f"sqlite:{tmp_path / 'h.sqlite3'}"
    directory = open_directory(dsn)
    directory.initialize({"owner": ["admin"]})
    before = directory.run(schema.applied_migrations)
    broken = schema._migration(  # noqa: SLF001 - a deliberately broken upgrade
        "broken-upgrade",
        "CREATE TABLE half_done (id {ID})",
        "ALTER TABLE names ADD COLUMN extra TEXT",
        "THIS IS NOT SQL",
    )
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    with pytest.raises(DATABASE_ERRORS):
        directory.initialize({"owner": ["admin"]})
    monkeypatch.setattr(schema, "MIGRATIONS", [m for m in schema.MIGRATIONS if m is not broken])
    assert directory.run(schema.applied_migrations) == before
    # neither the new table nor the new column exists: the upgrade left no trace
    with pytest.raises(DATABASE_ERRORS):
        directory.run(lambda tx: tx.all("SELECT * FROM half_done"))
    with pytest.raises(DATABASE_ERRORS):
        directory.run(lambda tx: tx.all("SELECT extra FROM names"))
    directory.initialize({"owner": ["admin"]})  # and the service still starts
    directory.close()

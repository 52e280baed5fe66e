"""Liveness, readiness, Prometheus metrics and the JSON request log."""

from __future__ import annotations

import json
import logging

import pytest
import requests
from clients import FlaskProtocolClient
from servers import GunicornServer

import hatrac
from hatrac.logs import LineHandler
from hatrac.model.storage import StorageError

NS = {"Content-Type": "application/x-hatrac-namespace"}


class Lines(logging.Handler):
    """Collects the messages of one logger."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def access_lines():
    handler = Lines()
    logger = logging.getLogger("hatrac.access")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def test_live_and_ready(client):
    app = client.app
    web = app.test_client()
    live = web.get("/hatrac-health/live")
    assert live.status_code == 200 and live.get_json() == {"status": "alive"}
    ready = web.get("/hatrac-health/ready")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "database": "ok", "storage": "ok"}


def test_readiness_reports_a_broken_database(client, monkeypatch):
    state = client.app.extensions["hatrac"]

    def down():
        raise ConnectionError("connection refused")

    monkeypatch.setattr(state.directory, "ping", down)
    ready = client.app.test_client().get("/hatrac-health/ready")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["status"] == "unready" and body["storage"] == "ok"
    assert "connection refused" in body["database"]
    # liveness does not depend on the database
    assert client.app.test_client().get("/hatrac-health/live").status_code == 200


def test_readiness_reports_broken_storage(client, monkeypatch):
    state = client.app.extensions["hatrac"]

    def unwritable():
        raise StorageError("storage_path /x is not writable (Permission denied)")

    monkeypatch.setattr(state.storage, "check", unwritable)
    ready = client.app.test_client().get("/hatrac-health/ready")
    assert ready.status_code == 503
    assert "not writable" in ready.get_json()["storage"]


def test_health_prefix_is_configurable(make_config):
    app = hatrac.create_app(make_config(health_prefix="/ops"))
    assert app.test_client().get("/ops/live").status_code == 200
    assert app.test_client().get("/hatrac-health/live").status_code == 404
    app.extensions["hatrac"].close()


def test_metrics_off_by_default(client):
    assert client.app.test_client().get("/hatrac-health/metrics").status_code == 404


def test_metrics_count_requests_and_bytes(make_config):
    app = hatrac.create_app(make_config(metrics_enabled=True))
    client = FlaskProtocolClient(app)
    assert client.mkdir("/hatrac/m", user="alice").status == 201
    assert client.put("/hatrac/m/o", user="alice", data=b"12345").status == 201
    assert client.get("/hatrac/m/o", user="alice").body == b"12345"
    assert client.get("/hatrac/m/absent", user="alice").status == 404
    scrape = app.test_client().get("/hatrac-health/metrics")
    assert scrape.status_code == 200
    text = scrape.get_data(as_text=True)
    assert 'hatrac_requests_total{method="PUT",status="201"} 2.0' in text
    assert 'hatrac_requests_total{method="GET",status="404"} 1.0' in text
    assert "hatrac_request_duration_seconds_bucket" in text
    assert "hatrac_request_body_bytes_total 5.0" in text
    assert "hatrac_upload_jobs_open 0.0" in text
    sent = [line for line in text.splitlines() if line.startswith("hatrac_response_body_bytes")]
    assert sent and float(sent[0].split()[-1]) >= 5
    app.extensions["hatrac"].close()


def test_request_log_is_one_json_line_per_request(client, access_lines):
    client.mkdir("/hatrac/logged", user="alice")
    client.put("/hatrac/logged/o", user="alice", data=b"abcdef", headers={"X-Request-Id": "req-42"})
    client.get("/hatrac/logged/o", user="alice")
    client.get("/hatrac/logged/o")  # anonymous, refused
    entries = [json.loads(line) for line in access_lines]
    assert len(entries) == 4
    put = entries[1]
    assert put["request_id"] == "req-42"
    assert put["method"] == "PUT" and put["path"] == "/hatrac/logged/o"
    assert put["status"] == 201 and put["client"] == "alice"
    assert put["bytes_in"] == 6 and put["bytes_out"] > 0
    assert put["duration_ms"] >= 0 and "time" in put
    get = entries[2]
    assert get["bytes_out"] == 6 and get["client"] == "alice"
    assert entries[3]["client"] is None and entries[3]["status"] == 401
    assert len({entry["request_id"] for entry in entries}) == 4


def test_the_default_log_destination_takes_lines_straight_and_a_filter_still_counts(
    client, tmp_path, monkeypatch
):
    logger = logging.getLogger("hatrac.access")
    path = tmp_path / "access.log"
    with open(path, "a") as stream:
        monkeypatch.setattr(logger, "handlers", [LineHandler(stream)])
        monkeypatch.setattr(logger, "filters", [])
        client.get("/hatrac/")
        first = path.read_text().splitlines()
        assert len(first) == 1 and json.loads(first[0])["path"] == "/hatrac/"
        refused = []

        def refuse(record: logging.LogRecord) -> bool:  # an admin's filter: drops everything
            refused.append(record.getMessage())
            return False

        logger.addFilter(refuse)
        client.get("/hatrac/")
        assert path.read_text().splitlines() == first and len(refused) == 1
        logger.removeFilter(refuse)
        logger.handlers[0].addFilter(refuse)  # on the handler: honoured too
        client.get("/hatrac/")
        assert path.read_text().splitlines() == first and len(refused) == 2
        logger.handlers[0].removeFilter(refuse)
        logger.handlers[0].setLevel(logging.WARNING)  # a level on the handler: honoured too
        client.get("/hatrac/")
        assert path.read_text().splitlines() == first
        logger.handlers[0].setLevel(logging.NOTSET)
        monkeypatch.setattr(logger, "propagate", True)  # the root's handlers get it too
        root = Lines()
        logging.getLogger().addHandler(root)
        try:
            client.get("/hatrac/")
        finally:
            logging.getLogger().removeHandler(root)
        assert len(path.read_text().splitlines()) == 2 and len(root.lines) == 1


def test_request_log_can_be_turned_off(make_config, access_lines):
    app = hatrac.create_app(make_config(access_log=False))
    app.test_client().get("/hatrac/")
    assert access_lines == []
    app.extensions["hatrac"].close()


def test_request_id_header_matches_the_log(client, access_lines):
    reply = client.get("/hatrac/")
    assert json.loads(access_lines[-1])["request_id"] == reply.headers["X-Request-Id"]


@pytest.mark.parametrize("workers", [2])
def test_metrics_multiprocess_under_gunicorn(tmp_path, monkeypatch, workers):
    """With PROMETHEUS_MULTIPROC_DIR, a scrape adds up every worker's requests."""
    metrics_directory = tmp_path / "prometheus"
    metrics_directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_directory))
    config = {
        "data_directory": str(tmp_path / "data"),
        "metrics_enabled": True,
        "root_acls": {"owner": ["admin"], "read": ["*"]},
    }
    server = GunicornServer(config, tmp_path, workers=workers, threads=1).start()
    try:
        session_count = 30
        for _ in range(session_count):
            # new connections, so both workers serve some
            assert requests.get(server.url + "/hatrac/", headers={"Connection": "close"}).ok
        scrape = requests.get(server.url + "/hatrac-health/metrics").text
        line = next(
            line
            for line in scrape.splitlines()
            if line.startswith('hatrac_requests_total{method="GET",status="200"}')
        )
        # the GunicornServer readiness probe made requests too
        assert float(line.split()[-1]) >= session_count
        pids = {path.name for path in metrics_directory.iterdir()}
        assert len(pids) >= 1
    finally:
        server.stop()

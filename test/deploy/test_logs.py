"""One log format: every line is a JSON object with the same ``time`` and a ``kind``;
and metrics that add up every worker under the packaged gunicorn config by themselves."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests
from servers import free_port, wait_for_port

from hatrac import metrics_dir
from hatrac.logs import KINDS, GunicornFormatter, JsonFormatter, json_line

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def record(name: str, level: int, message: str, **extra) -> logging.LogRecord:
    entry = logging.LogRecord(name, level, __file__, 1, message, None, None)
    entry.__dict__.update(extra)
    return entry


def test_formatter_gives_every_record_the_common_shape():
    formatter = JsonFormatter()
    warning = json.loads(formatter.format(record("hatrac.model", logging.WARNING, "disk slow")))
    assert list(warning)[:2] == ["time", "kind"] and TIME.match(warning["time"])
    assert warning["kind"] == "error" and warning["level"] == "WARNING"
    assert warning["logger"] == "hatrac.model" and warning["message"] == "disk slow"
    try:
        raise ValueError("boom")
    except ValueError:
        failed = record("hatrac", logging.ERROR, "request failed", exc_info=sys.exc_info())
    line = formatter.format(failed)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]
    # lines made by json_line (access, audit, startup) pass unchanged
    made = json_line("audit", {"event": "login.success", "user": "ann"})
    assert formatter.format(record("hatrac.audit", logging.INFO, made, hatrac_json=True)) == made
    assert json.loads(made)["kind"] == "audit" and TIME.match(json.loads(made)["time"])
    gunicorn = GunicornFormatter()
    booting = record("gunicorn.error", logging.INFO, "Booting worker with pid: 7")
    assert json.loads(gunicorn.format(booting))["kind"] == "startup"
    timeout = record("gunicorn.error", logging.CRITICAL, "WORKER TIMEOUT (pid:7)")
    assert json.loads(gunicorn.format(timeout))["kind"] == "error"


def test_an_admin_chosen_metrics_directory_is_emptied_at_start(tmp_path, monkeypatch):
    chosen = tmp_path / "metrics"
    chosen.mkdir()
    (chosen / "counter_123.db").write_bytes(b"stale")
    (chosen / "keep.txt").write_text("not ours")
    monkeypatch.setenv(metrics_dir.VARIABLE, str(chosen))
    assert metrics_dir.prepare(enabled=True) == str(chosen)
    assert sorted(p.name for p in chosen.iterdir()) == ["keep.txt"]
    metrics_dir.cleanup()  # not ours to remove
    assert chosen.is_dir()


def test_packaged_gunicorn_logs_json_and_sums_worker_metrics(tmp_path):
    """Two workers, metrics on, PROMETHEUS_MULTIPROC_DIR not set: standard error is JSON
    lines only (gunicorn's own included) and a scrape counts the requests of both workers."""
    config = tmp_path / "hatrac_config.json"
    config.write_text(json.dumps({"data_directory": "data", "metrics_enabled": True}))
    environment = {k: v for k, v in os.environ.items() if k != metrics_dir.VARIABLE}
    environment.update(HATRAC_CONFIG=str(config), TMPDIR=str(tmp_path))
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "python:hatrac.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "1",
            "hatrac:create_app()",
        ],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, process=process)
        private = list(tmp_path.glob("hatrac-metrics-*"))
        assert len(private) == 1 and private[0].is_dir()
        count = 30
        for _ in range(count):  # new connections, so both workers serve some
            reply = requests.get(url + "/hatrac/", headers={"Connection": "close"}, timeout=10)
            assert reply.status_code == 401  # the root is not public: an audit line each
        scrape = requests.get(url + "/hatrac-health/metrics", timeout=10).text
        line = next(
            line
            for line in scrape.splitlines()
            if line.startswith('hatrac_requests_total{method="GET",status="401"}')
        )
        assert float(line.split()[-1]) == count
        assert len(list(private[0].glob("*.db"))) >= 2  # files of both workers
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert out == b""
    lines = err.decode().splitlines()
    assert lines, "nothing logged"
    parsed = [json.loads(text) for text in lines]  # every line is one JSON object
    for entry in parsed:
        assert TIME.match(entry["time"]) and entry["kind"] in KINDS, entry
    kinds = {entry["kind"] for entry in parsed}
    assert {"access", "audit", "startup"} <= kinds
    started = [e for e in parsed if e["kind"] == "startup" and e.get("version")]
    assert len(started) == 2 and all(e["metrics_multiprocess"] for e in started)
    assert any("Listening at" in e.get("message", "") for e in parsed)
    denied = [e for e in parsed if e["kind"] == "audit" and e["event"] == "access.denied"]
    assert len(denied) == count
    accessed = [e for e in parsed if e["kind"] == "access"]
    assert len(accessed) == count + 1  # every request, the scrape too: none lost at the stop
    assert not Path(private[0]).exists(), "the private metrics directory outlived gunicorn"

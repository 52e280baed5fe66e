"""A server process that starts while PostgreSQL is down keeps running.

gunicorn stops the whole service when a worker fails to boot, so a worker
started (or respawned after a crash or ``max_requests``) during a database
restart must not fail: it answers 503 with Retry-After until the database
answers, then sets it up and serves. A database that refuses us for good
(a wrong credential) still stops the service at once with one line, see
test_database_faults.py.

"The database comes up" is a TCP relay in front of the real PostgreSQL: with
the relay closed, the service's connections are refused, as they are when
the server is down.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
import requests
from backends import TEST_ROOT_ACLS
from servers import GunicornServer, TcpRelay


def _workers(master: int) -> set[int]:
    """The pids of the gunicorn master's children."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            found.add(int(stat.parent.name))
    return found


def _wait_for(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def relayed(postgres, tmp_path_factory):
    """A gunicorn service whose database is behind a relay that starts closed."""
    directory = tmp_path_factory.mktemp("down_at_start")
    relay = TcpRelay(postgres.port)
    dsn = re.sub(r"port=\d+", f"port={relay.port}", postgres.new_schema("down_at_start"))
    config = {
        "data_directory": str(directory / "data"),
        "database_dsn": dsn,
        "root_acls": {**TEST_ROOT_ACLS, "subtree-read": ["*"]},
    }
    server = GunicornServer(config, directory, workers=1, threads=2).start()
    yield server, relay
    server.stop()
    relay.close()


def _is(status: int, url: str):
    return lambda: requests.get(url, timeout=10).status_code == status


def test_a_service_started_without_its_database_answers_503_then_serves(relayed):
    server, relay = relayed
    reply = requests.get(server.url + "/hatrac/", timeout=10)
    assert reply.status_code == 503, reply.text
    assert int(reply.headers["Retry-After"]) > 0
    assert "not reachable" in reply.text
    assert requests.get(server.url + "/hatrac-health/live", timeout=10).status_code == 200
    ready = requests.get(server.url + "/hatrac-health/ready", timeout=10)
    assert ready.status_code == 503
    assert "refused" in ready.json()["database"], ready.text
    assert server.process.poll() is None, server.log()

    relay.open()
    _wait_for(_is(200, server.url + "/hatrac/"), "the service to set up its database")
    put = requests.put(server.url + "/hatrac/kept", data=b"bytes", timeout=10)
    assert put.status_code == 201, put.text
    assert requests.get(server.url + "/hatrac-health/ready", timeout=10).status_code == 200
    assert "Traceback" not in server.log()


def test_a_worker_respawned_while_the_database_is_down_keeps_the_service(relayed):
    server, relay = relayed
    _wait_for(_is(200, server.url + "/hatrac/kept"), "the first test's object")
    relay.close()
    (worker,) = _workers(server.process.pid)
    os.kill(worker, signal.SIGKILL)
    _wait_for(lambda: _workers(server.process.pid) - {worker}, "gunicorn to respawn its worker")
    (reply,) = _wait_for(
        lambda: [
            r
            for r in [requests.get(server.url + "/hatrac/kept", timeout=10)]
            if r.status_code == 503
        ],
        "the new worker to answer",
    )
    assert int(reply.headers["Retry-After"]) > 0
    assert server.process.poll() is None, "gunicorn stopped:\n" + server.log()

    relay.open()
    _wait_for(_is(200, server.url + "/hatrac/kept"), "the new worker to reach the database")
    assert requests.get(server.url + "/hatrac/kept", timeout=10).content == b"bytes"
    assert "Worker failed to boot" not in server.log()

"""Defect 10 of issue 13: slow clients must not starve the server that
``scripts/serve.sh`` starts (gunicorn with ``hatrac.gunicorn_conf``).

200 connections send half a request head and stall; meanwhile other clients
must be answered (each within a few seconds: the server would otherwise
block them until the slow ones gave up). The slow connections are closed at
the header timeout. The test prints the slowest answer it measured.
"""

from __future__ import annotations

import socket
import time

import pytest
import requests
from servers import GunicornServer

SLOW = 200


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("HATRAC_HEADER_TIMEOUT", "3")
    monkeypatch.setenv("HATRAC_BODY_TIMEOUT", "3")
    config = {
        "data_directory": str(tmp_path / "data"),
        "root_acls": {"owner": ["admin"], "create": ["*"], "read": ["*"]},
    }
    # one worker, four threads: forty stalled clients would be ten times too many
    server = GunicornServer(config, tmp_path, workers=1, threads=4, serve_conf=True).start()
    yield server
    server.stop()


def test_stalled_heads_do_not_starve_others(server):
    stalled = []
    for index in range(SLOW):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(b"GET /hatrac/ HTTP/1.1\r\nHost: x\r\nX-Slow: " + str(index).encode())
        stalled.append(sock)
    try:
        slowest = 0.0
        session = requests.Session()
        for _ in range(20):
            started = time.monotonic()
            reply = session.get(server.url + "/hatrac/", timeout=5)
            slowest = max(slowest, time.monotonic() - started)
            assert reply.status_code == 200
            fresh = requests.get(server.url + "/hatrac-health/live", timeout=5)
            assert fresh.status_code == 200
        print(f"slowest answer with {SLOW} stalled connections: {slowest * 1000:.0f} ms")
        # a stalled body holds a thread only until the body timeout
        body_stalls = []
        started = time.monotonic()
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"PUT /hatrac/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
            body_stalls.append(sock)
        time.sleep(0.2)
        assert requests.get(server.url + "/hatrac-health/live", timeout=8).status_code == 200
        for sock in body_stalls:  # the server answers 400 and closes
            sock.settimeout(10)
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 400") or answer == b"", answer
        print(f"4 stalled bodies freed their threads in {time.monotonic() - started:.1f} s")
        assert requests.get(server.url + "/hatrac/slow").status_code == 404
        # past the header timeout, the stalled heads are closed by the server
        deadline = time.monotonic() + 10
        for sock in stalled:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            assert sock.recv(1024) == b""
    finally:
        for sock in stalled:
            sock.close()

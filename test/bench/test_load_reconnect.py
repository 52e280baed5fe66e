"""The load client's ``reconnect_every``: a new connection after that many requests."""

from __future__ import annotations

import http.server
import threading

from bench import load


class _Counting(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn
    connections = 0
    lock = threading.Lock()

    def setup(self):
        with _Counting.lock:
            _Counting.connections += 1
        super().setup()

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def _connections(plan: dict) -> int:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Counting.connections = 0
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = load.run_load(url, plan, clients=2, count=20)
        assert result.ops == 40 and result.errors == 0
    finally:
        server.shutdown()
        server.server_close()
    return _Counting.connections


def test_each_client_connects_again_after_every_n_requests():
    plan = {"kind": "get", "paths": ["/x"]}
    assert _connections(plan) == 2  # one keep-alive connection per client
    assert _connections({**plan, "reconnect_every": 5}) == 8  # 20 requests, 4 each

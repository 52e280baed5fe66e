"""Defects 3 and 8 of issue 13 (and 9): bodies a client controls.

* JSON nested thousands deep on every JSON body (``;acl``, rename, upload
  jobs, tokens, login) is a 400, not a RecursionError 500;
* a malformed ``Transfer-Encoding: chunked`` body is a 400 under gunicorn;
* a PUT refused before its body is read (401) reaches a client that sends
  the whole body before it reads; ``Expect: 100-continue`` is answered only
  when the body is wanted, so a refused client never sends it;
* ``X-Forwarded-Proto: https`` from loopback does not make the session
  cookie ``Secure`` unless ``trust_forwarded_headers`` is set.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import requests
from servers import GunicornServer

DEEP = b"[" * 5000 + b"]" * 5000
ROOT_ACLS = {"owner": ["admin"], "create": ["admin"], "read": ["*"]}


@pytest.mark.parametrize("backends", [("sqlite", "filesystem")], indirect=True)
def test_deeply_nested_json_is_400_everywhere(client):
    assert (
        client.put(
            "/hatrac/ns", user="admin", headers={"Content-Type": "application/x-hatrac-namespace"}
        ).status
        == 201
    )
    assert client.put("/hatrac/ns/obj", user="admin", data=b"x").status == 201
    cases = [
        ("PUT", "/hatrac/ns;acl/read", {"Content-Type": "application/json"}),
        ("POST", "/hatrac/ns/new", {"Content-Type": "application/json"}),
        ("POST", "/hatrac/ns/obj;upload", {"Content-Type": "application/json"}),
        ("POST", "/authn/session", {"Content-Type": "application/json"}),
    ]
    for method, path, headers in cases:
        for body in (DEEP, b'{"a":' * 3000 + b"1" + b"}" * 3000):
            reply = client.request(method, path, user="admin", headers=headers, data=body)
            assert reply.status == 400, (method, path, reply.status, reply.text)


def test_parse_json_limits_depth():
    from hatrac.errors import BadRequest
    from hatrac.rest.bodies import json_nesting, parse_json

    assert parse_json(b'{"a": ["[[[", {"b": 1}]}', "x") == {"a": ["[[[", {"b": 1}]}
    assert json_nesting('["\\"[", [[]]]') == 3
    for body in (DEEP, b"[" * 33 + b"]" * 33, b"\xff", b"{"):
        with pytest.raises(BadRequest):
            parse_json(body, "must be JSON")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hostile")
    config = {"data_directory": str(directory / "data"), "root_acls": ROOT_ACLS}
    server = GunicornServer(config, directory, workers=1, threads=4, serve_conf=True).start()
    yield server
    server.stop()


def _raw(server, request: bytes, body: bytes = b"", read_first: bool = False) -> bytes:
    """Send a request (and all of its body before reading, unless ``read_first``)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(request)
        if read_first:
            return sock.recv(65536)
        sock.sendall(body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer


def test_malformed_chunked_body_is_400(server):
    head = (
        b"PUT /hatrac/chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\n\r\n"
    )
    answer = _raw(server, head, b"zz\r\nhello\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
    for line in (b"PUT /hatrac/;acl/read", b"POST /hatrac/obj;upload", b"POST /authn/session"):
        answer = _raw(server, head.replace(b"PUT /hatrac/chunky", line), b"zz\r\n[[[\r\n0\r\n\r\n")
        assert answer.split(b"\r\n")[0].split()[1] in (b"400", b"401"), answer[:300]
    assert "Traceback" not in server.log()


def test_refused_put_body_is_drained(server):
    body = os.urandom(4 * 1024 * 1024)
    head = (
        f"PUT /hatrac/refused HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    answer = _raw(server, head, body)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    # the way http.client (and so DERIVA's clients) sends: all, then read
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    connection.request("PUT", "/hatrac/refused2", body=body)
    assert connection.getresponse().status == 401
    connection.close()


def test_expect_100_continue_refused_gets_final_status_first(server):
    head = (
        b"PUT /hatrac/refused HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    answer = _raw(server, head, read_first=True)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"100 Continue" not in answer


def test_expect_100_continue_accepted_gets_100_then_201(tmp_path):
    config = {
        "data_directory": str(tmp_path / "data"),
        "root_acls": {"owner": ["admin"], "create": ["*"], "read": ["*"]},
    }
    open_server = GunicornServer(config, tmp_path, workers=1, threads=2, serve_conf=True).start()
    try:
        with socket.create_connection(("127.0.0.1", open_server.port), timeout=20) as sock:
            sock.sendall(
                b"PUT /hatrac/wanted HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
            sock.sendall(b"hello")
            assert sock.recv(4096).startswith(b"HTTP/1.1 201")
    finally:
        open_server.stop()


@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_proto_counts_only_when_trusted(tmp_path, trusted):
    config = {
        "data_directory": str(tmp_path / "data"),
        "root_acls": ROOT_ACLS,
        "trust_forwarded_headers": trusted,
    }
    config_path = tmp_path / "hatrac_config.json"
    import json

    config_path.write_text(json.dumps(config))
    hatrac_cli = [sys.executable, "-m", "hatrac.cli"]
    environment = dict(os.environ, HATRAC_CONFIG=str(config_path))
    subprocess.run([*hatrac_cli, "init-db"], env=environment, check=True, capture_output=True)
    subprocess.run(
        [*hatrac_cli, "user", "add", "alice", "--password-stdin"],
        input=b"a long password 123\n",
        env=environment,
        check=True,
        capture_output=True,
    )
    # plain gunicorn, no hatrac config file for it: its own default trusts loopback
    proxied = GunicornServer(config, tmp_path, workers=1, threads=2).start()
    try:
        reply = requests.post(
            proxied.url + "/authn/session",
            data={"username": "alice", "password": "a long password 123"},
            headers={"X-Forwarded-Proto": "https", "Origin": proxied.url},
            timeout=10,
        )
        assert reply.status_code in (200, 201, 303), reply.text
        cookie = reply.headers["Set-Cookie"]
        assert ("Secure" in cookie) == trusted, cookie
    finally:
        proxied.stop()

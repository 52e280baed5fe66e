"""End to end over real HTTP: a gunicorn server, raw sockets and requests.

These cover what only a real server shows: chunked transfer coding, bodies
cut short by a disconnecting client, limits enforced before reading, encoded
slashes on the wire, sendfile'd and ranged reads, and concurrent clients.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from servers import GunicornServer

OPEN_ROOT = {"owner": ["admin"], "subtree-owner": ["*"]}
NAMESPACE = "application/x-hatrac-namespace"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp("live")
    config = {"data_directory": str(directory / "data"), "root_acls": OPEN_ROOT}
    if request.param == "postgres":
        postgres = request.getfixturevalue("postgres")
        config["database_dsn"] = postgres.new_schema(f"live_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    live = GunicornServer(config, directory, workers=2, threads=8).start()
    yield live
    live.stop()


@pytest.fixture
def base(server) -> str:
    """A fresh namespace URL on the live server."""
    name = f"/hatrac/e2e-{uuid.uuid4().hex[:10]}"
    reply = requests.put(
        server.url + name, headers={"Content-Type": "application/x-hatrac-namespace"}
    )
    assert reply.status_code == 201, reply.text
    return server.url + name


def raw_request(port: int, head: bytes, body: bytes = b"", close_early: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        if close_early:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except (ConnectionResetError, socket.timeout):
            pass
        return b"".join(chunks)


def test_chunked_transfer_encoding(base):
    empty = requests.put(base + "/empty", data=iter([]))  # requests sends chunked
    assert empty.status_code == 201, empty.text
    assert requests.get(base + "/empty").content == b""
    parts = [b"x" * 1000, b"y" * 70000, b"z"]
    reply = requests.put(base + "/chunked", data=iter(parts))
    assert reply.status_code == 201
    got = requests.get(base + "/chunked")
    assert got.content == b"".join(parts)
    assert (
        got.headers["Content-SHA256"]
        == base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode()
    )


def test_short_body_never_becomes_a_version(server, base):
    path = base[len(server.url) :] + "/short"
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n"
        "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    ).encode()
    raw_request(server.port, head, b"a" * 5000, close_early=True)
    time.sleep(0.5)
    assert requests.get(base + "/short").status_code == 404
    assert requests.get(base).json() == []
    storage = os.path.join(server.config["data_directory"], "storage", "tmp")
    deadline = time.time() + 10
    while os.listdir(storage) and time.time() < deadline:
        time.sleep(0.1)
    assert os.listdir(storage) == []


def test_large_bodies_read_from_the_socket_stop_at_their_length(server, base):
    """Bodies past 256 KiB are read straight from gunicorn's socket (hatrac/rest/body.py):
    a pipelined request behind one is still served, a short one stores nothing."""
    path = base[len(server.url) :]
    body = os.urandom(700 * 1024 + 7)
    put = (
        f"PUT {path}/piped HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    get = f"GET {path}/piped HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    answer = raw_request(server.port, put, body + get)
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
    second = answer[answer.index(b"HTTP/1.1 200") :]
    assert second.endswith(body)
    assert requests.get(base + "/piped").content == body

    short = (
        f"PUT {path}/short-large HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2000000\r\n"
        "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    ).encode()
    raw_request(server.port, short, b"s" * 400000, close_early=True)
    time.sleep(0.5)
    assert requests.get(base + "/short-large").status_code == 404
    storage = os.path.join(server.config["data_directory"], "storage", "tmp")
    deadline = time.time() + 10
    while os.listdir(storage) and time.time() < deadline:
        time.sleep(0.1)
    assert os.listdir(storage) == []


def test_oversize_content_length_is_413_before_reading(server, base):
    path = base[len(server.url) :] + "/huge"
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {10 * 1024**3}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    answer = raw_request(server.port, head, b"abc")
    assert answer.startswith(b"HTTP/1.1 413")
    assert requests.get(base + "/huge").status_code == 404


def test_encoded_syntax_characters_roundtrip(base):
    name = "/a%2Fb%3Ac%3Bd%20e"
    reply = requests.put(base + name, data=b"odd name")
    assert reply.status_code == 201, reply.text
    location = reply.text.strip()
    assert location.startswith(base.split("127.0.0.1", 1)[1].split("/", 1)[1].join(["/", ""]))
    assert "/a%2Fb%3Ac%3Bd%20e:" in location
    assert requests.get(base + name).content == b"odd name"
    listing = requests.get(base).json()
    assert [entry.rsplit("/", 1)[1] for entry in listing] == ["a%2Fb%3Ac%3Bd%20e"]
    # %2F is data: no namespace "a" was created
    assert requests.get(base + "/a").status_code == 404


def test_bad_paths_on_the_wire(server, base):
    prefix = base[len(server.url) :]
    for raw in ("/%2E%2E/x", "/a//b", "/%FF", "/a%00b", "/.", "/x" * 3000):
        answer = raw_request(
            server.port,
            f"GET {prefix}{raw} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
        )
        status = answer.split(b" ", 2)[1]
        assert status in (b"400", b"414"), (raw, answer[:200])


def test_control_characters_on_the_wire_are_400(server, base):
    """A decoded newline (or other control character) is the parser's 400, in the
    service's error format, not the router's bare 404."""
    prefix = base[len(server.url) :]
    for raw in ("/a%0Ab", "/a%0D%0A", "/x%0A/y", "/o:v%0A", "/o;acl/read/r%0A", "/a%7F"):
        for method in ("GET", "PUT"):
            answer = raw_request(
                server.port,
                f"{method} {prefix}{raw} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                "Accept: application/json\r\nConnection: close\r\n\r\n".encode(),
            )
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400"), (method, raw, answer[:300])
            assert "control character" in json.loads(body)["detail"], (method, raw, body)


def test_ranges(base):
    body = bytes(range(256)) * 400
    requests.put(base + "/r", data=body)
    whole = requests.get(base + "/r", headers={"Range": "bytes=0-"})
    assert whole.content == body
    part = requests.get(base + "/r", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == body[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(body)}"
    tail = requests.get(base + "/r", headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == body[-5:]
    start = requests.get(base + "/r", headers={"Range": "bytes=100-"})
    assert start.status_code == 206 and start.content == body[100:]
    beyond = requests.get(base + "/r", headers={"Range": f"bytes={len(body)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(body)}"
    multi = requests.get(base + "/r", headers={"Range": "bytes=0-1,5-6"})
    assert multi.status_code == 501
    invalid = requests.get(base + "/r", headers={"Range": "pages=1-2"})
    assert invalid.status_code == 200 and invalid.content == body
    assert requests.get(base, headers={"Range": "bytes=0-1"}).status_code == 501


def test_ranges_before_the_end_are_exact_on_one_connection(base):
    """Ranges past the small-body size that end before the end of the object go to
    the server's sendfile, which must stop at the range: every reply on one
    keep-alive connection is exactly its bytes (a byte too many would corrupt
    the next reply)."""
    body = os.urandom(3 * 1024 * 1024 + 7)
    assert requests.put(base + "/ranged", data=body).status_code == 201
    with requests.Session() as session:
        for first, last in ((100_000, 400_000), (0, 70_000), (1, len(body) - 2), (2**20, 2**21)):
            part = session.get(base + "/ranged", headers={"Range": f"bytes={first}-{last}"})
            assert part.status_code == 206
            assert part.headers["Content-Range"] == f"bytes {first}-{last}/{len(body)}"
            assert int(part.headers["Content-Length"]) == last - first + 1
            assert part.content == body[first : last + 1]
        assert session.get(base + "/ranged").content == body


def test_large_object_streams_both_ways(base, tmp_path):
    size = 48 * 1024 * 1024 + 13
    source = tmp_path / "big"
    digest = hashlib.sha256()
    with open(source, "wb") as out:
        block = os.urandom(1024 * 1024)
        written = 0
        while written < size:
            piece = block[: min(len(block), size - written)]
            out.write(piece)
            digest.update(piece)
            written += len(piece)
    with open(source, "rb") as body:
        reply = requests.put(base + "/big", data=body)
    assert reply.status_code == 201
    received = hashlib.sha256()
    with requests.get(base + "/big", stream=True) as got:
        assert int(got.headers["Content-Length"]) == size
        for chunk in got.iter_content(1024 * 1024):
            received.update(chunk)
    assert received.hexdigest() == digest.hexdigest()
    assert got.headers["Content-SHA256"] == base64.b64encode(digest.digest()).decode()


def test_concurrent_puts_of_one_new_name(base):
    """Exactly one creates the object; every PUT gets a distinct, readable version."""
    count = 24
    barrier = threading.Barrier(count)

    def put(index: int):
        barrier.wait()
        return requests.put(base + "/race", data=f"body {index}".encode())

    with ThreadPoolExecutor(count) as pool:
        replies = list(pool.map(put, range(count)))
    assert [r.status_code for r in replies] == [201] * count, [r.text for r in replies]
    locations = [r.text.strip() for r in replies]
    assert len(set(locations)) == count
    listed = requests.get(base + "/race;versions").json()
    assert sorted(listed) == sorted(locations)
    server = base.split("/hatrac")[0]
    for index, location in enumerate(locations):
        assert requests.get(server + location).content == f"body {index}".encode()
    assert requests.get(base).json() == [base[len(server) :] + "/race"]


def test_concurrent_namespace_creates(base):
    count = 16
    barrier = threading.Barrier(count)

    def mkdir(_):
        barrier.wait()
        return requests.put(
            base + "/dir", headers={"Content-Type": "application/x-hatrac-namespace"}
        ).status_code

    with ThreadPoolExecutor(count) as pool:
        statuses = sorted(pool.map(mkdir, range(count)))
    assert statuses == [201] + [409] * (count - 1)


def test_concurrent_parents_creation(base):
    count = 12
    barrier = threading.Barrier(count)

    def put(index: int):
        barrier.wait()
        return requests.put(f"{base}/deep/er/obj{index}?parents=true", data=b"x").status_code

    with ThreadPoolExecutor(count) as pool:
        statuses = list(pool.map(put, range(count)))
    assert statuses == [201] * count
    assert len(requests.get(base + "/deep/er").json()) == count


def _directory_invariants(server) -> tuple[int, int]:
    """(live names under a tombstone, live versions of a deleted name) in the database."""
    from hatrac.config import load_config
    from hatrac.model.directory import open_directory

    directory = open_directory(load_config(str(server.config_path)).database_dsn)
    try:
        return directory.run(
            lambda tx: (
                tx.one(
                    "SELECT count(*) FROM names c JOIN names p ON p.id = c.parent_id "
                    "WHERE p.deleted AND NOT c.deleted"
                )[0],
                tx.one(
                    "SELECT count(*) FROM versions v JOIN names n ON n.id = v.name_id "
                    "WHERE n.deleted AND NOT v.deleted"
                )[0],
            )
        )
    finally:
        directory.close()


def test_namespace_delete_racing_puts_leaves_nothing_live_beneath(server, base):
    """A delete of a namespace while clients PUT (and create parents) beneath it:
    every PUT either landed before the delete (and went with it) or failed; no
    live name or version is left under the tombstone."""
    for round_ in range(4):
        sub = f"{base}/sub{round_}"
        assert requests.put(sub, headers={"Content-Type": NAMESPACE}).status_code == 201
        stop = threading.Event()

        def put_until_stopped(client: int, sub=sub, stop=stop) -> list[int]:
            statuses = []
            index = 0
            while not stop.is_set() or index < 3:
                url = f"{sub}/d{client}/obj{index}?parents=true"
                statuses.append(requests.put(url, data=b"x").status_code)
                index += 1
            return statuses

        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(put_until_stopped, c) for c in range(6)]
            time.sleep(0.05 * (round_ + 1))
            deleted = requests.delete(sub)
            stop.set()
            statuses = [s for f in futures for s in f.result()]
        assert deleted.status_code == 204, deleted.text
        assert set(statuses) <= {201, 404, 409}, statuses
        assert requests.get(sub).status_code == 404
    assert _directory_invariants(server) == (0, 0)


def test_conditional_puts_racing_on_one_etag(base):
    """If-Match: of many PUTs made against the same current version, one wins."""
    first = requests.put(base + "/cond", data=b"v0")
    etag = requests.head(base + "/cond").headers["ETag"]
    count = 12
    barrier = threading.Barrier(count)

    def put(index: int) -> int:
        barrier.wait()
        reply = requests.put(base + "/cond", data=f"v{index}".encode(), headers={"If-Match": etag})
        return reply.status_code

    with ThreadPoolExecutor(count) as pool:
        statuses = sorted(pool.map(put, range(1, count + 1)))
    assert first.status_code == 201
    assert statuses == [201] + [412] * (count - 1)
    assert len(requests.get(base + "/cond;versions").json()) == 2


def test_errors_are_negotiated(base):
    plain = requests.get(base + "/missing")
    assert plain.status_code == 404
    assert plain.headers["Content-Type"].startswith("text/plain")
    assert "does not exist" in plain.text
    assert plain.headers.get("X-Request-Id")
    problem = requests.get(base + "/missing", headers={"Accept": "application/json"})
    assert problem.json()["status"] == 404
    assert problem.json()["title"] == "Not Found"
    assert "detail" in problem.json()
    page = requests.get(base + "/missing", headers={"Accept": "text/html"})
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<h1>" in page.text
    method = requests.post(base + "/missing")
    assert method.status_code in (405, 400, 404)


def test_chunked_body_over_the_limit_is_413_and_stores_nothing(tmp_path):
    limit = 100 * 1024 * 1024
    config = {
        "data_directory": str(tmp_path / "data"),
        "root_acls": OPEN_ROOT,
        "max_request_payload_size": limit,
    }
    live = GunicornServer(config, tmp_path, workers=1, threads=2).start()
    try:
        block = b"\0" * (1024 * 1024)

        def body():
            for _ in range(limit // len(block) + 2):
                yield block

        try:
            reply = requests.put(live.url + "/hatrac/toobig", data=body())
            status = reply.status_code
        except requests.ConnectionError:
            status = None  # the server may close the connection after answering
        assert status in (413, None)
        assert requests.get(live.url + "/hatrac/toobig").status_code == 404
        storage = tmp_path / "data" / "storage"
        assert list((storage / "tmp").iterdir()) == []
        assert list((storage / "objects").rglob("*.*")) == []
    finally:
        live.stop()

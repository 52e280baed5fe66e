"""Upload jobs over a real gunicorn: the DERIVA client's exact flow, parallel
chunk streams, many chunks, and SIGKILL in the middle of a chunk or of
finalization (after a restart the job resumes or is cleanly gone; no partial
version is ever visible)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import requests
from helpers import b64md5, b64sha256, chunks_of, deriva_job_id
from servers import GunicornServer

OPEN_ROOT = {"owner": ["admin"], "subtree-owner": ["*"]}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live_config(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp("uploads-live")
    config = {"data_directory": str(directory / "data"), "root_acls": OPEN_ROOT}
    if request.param == "postgres":
        postgres = request.getfixturevalue("postgres")
        config["database_dsn"] = postgres.new_schema(f"up_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    return config, directory


@pytest.fixture(scope="module")
def server(live_config):
    config, directory = live_config
    live = GunicornServer(config, directory, workers=2, threads=4).start()
    yield live
    live.stop()


def fresh_namespace(url: str) -> str:
    """A new namespace path (with the prefix) on a live server."""
    path = f"/hatrac/up-{uuid.uuid4().hex[:10]}"
    reply = requests.put(url + path, headers={"Content-Type": "application/x-hatrac-namespace"})
    assert reply.status_code == 201, reply.text
    return path


class DerivaLikeStore:
    """The requests HatracStore.put_loc(chunked=True) makes, reproduced verbatim
    from deriva 1.7 (headers, bodies, job-id parsing), without the package."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()
        self.session.headers["deriva-client-context"] = quote(
            json.dumps({"cid": "test", "wid": uuid.uuid4().hex}, separators=(",", ":"))
        )

    def put_loc(self, path: str, data: bytes, chunk_size: int, content_type: str) -> str:
        md5 = b64md5(data)
        # 1. the idempotency check
        head = self.session.head(self.base + path, headers={"Accept": "*/*"})
        if head.status_code == 200 and head.headers.get("Content-MD5") == md5:
            return head.headers["Content-Location"]
        # 2. create the job
        spec = {
            "chunk-length": chunk_size,
            "content-length": len(data),
            "content-type": content_type,
            "content-md5": md5,
            "content-disposition": "filename*=UTF-8''data.bin",
        }
        reply = self.session.post(
            self.base + path + ";upload?parents=true",
            json=spec,
            headers={"Content-Type": "application/json"},
        )
        reply.raise_for_status()
        job_id = reply.text.split("/")[-1][:-1]
        assert job_id == deriva_job_id(reply.text)
        job_url = self.base + path + ";upload/" + job_id
        # 3. status: the client obeys the chunk-length it reads back
        status = self.session.get(job_url)
        status.raise_for_status()
        chunk_size = status.json()["chunk-length"]
        # 4. chunks, in order, one at a time
        for index, chunk in enumerate(chunks_of(data, chunk_size)):
            reply = self.session.put(
                f"{job_url}/{index}",
                data=chunk,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(len(chunk)),
                },
            )
            reply.raise_for_status()
        # 5. finalize: empty body, no Content-Type
        reply = self.session.post(job_url)
        reply.raise_for_status()
        return reply.text.strip()


def test_deriva_chunked_upload(server):
    ns = fresh_namespace(server.url)
    store = DerivaLikeStore(server.url)
    data = os.urandom(300 * 1024 + 5)
    version = store.put_loc(ns + "/sub/file.bin", data, 64 * 1024, "application/octet-stream")
    assert version.startswith(ns + "/sub/file.bin:")
    got = requests.get(server.url + ns + "/sub/file.bin")
    assert got.content == data
    assert got.headers["Content-MD5"] == b64md5(data)
    assert got.headers["Content-SHA256"] == b64sha256(data)
    assert got.headers["Content-Location"] == version
    assert got.headers["Content-Disposition"] == "filename*=UTF-8''data.bin"
    # the idempotency check now short-circuits
    assert store.put_loc(ns + "/sub/file.bin", data, 64 * 1024, "x/y") == version
    # an empty file: a job with no chunks
    empty = store.put_loc(ns + "/empty", b"", 1024, "text/plain")
    assert requests.get(server.url + empty).content == b""
    # cancel, as the client does when a chunk fails
    job = requests.post(
        server.url + ns + "/c;upload", json={"chunk-length": 4, "content-length": 8}
    ).text
    job_url = server.url + ns + "/c;upload/" + deriva_job_id(job)
    assert requests.delete(job_url).status_code == 204
    assert requests.get(job_url).status_code == 404


def test_chunk_numbers_past_the_end(server):
    """However large, a chunk number past the job's end is a 409 (it was a 500
    from 2**63 on, where the database's integers end); of a missing job, 404."""
    ns = fresh_namespace(server.url)
    job = requests.post(
        server.url + ns + "/obj;upload", json={"chunk-length": 4, "content-length": 10}
    ).text
    job_url = server.url + job.strip()
    just_past = requests.put(job_url + "/3", data=b"12")
    assert just_past.status_code == 409, just_past.text
    for number in (str(2**63 - 1), str(2**63), "99999999999999999999", "9" * 1000):
        reply = requests.put(job_url + "/" + number, data=b"12")
        assert reply.status_code == 409, (number, reply.text)
        assert "past the end of this job" in reply.text
        missing = requests.put(server.url + ns + "/obj;upload/NOJOB/" + number, data=b"12")
        assert missing.status_code == 404, (number, missing.text)
    # the job is unharmed
    for index, chunk in enumerate((b"1234", b"5678", b"90")):
        assert requests.put(f"{job_url}/{index}", data=chunk).status_code == 204
    assert requests.post(job_url).status_code == 201
    assert requests.get(server.url + ns + "/obj").content == b"1234567890"


def test_parallel_streams(server):
    ns = fresh_namespace(server.url)
    data = os.urandom(24 * 1024 * 1024 + 333)
    chunk = 1024 * 1024
    reply = requests.post(
        server.url + ns + "/big;upload",
        json={
            "chunk-length": chunk,
            "content-length": len(data),
            "content-sha256": b64sha256(data),
        },
    )
    job = server.url + reply.headers["Location"]
    parts = chunks_of(data, chunk)

    def send(index: int) -> int:
        with requests.Session() as session:
            return session.put(f"{job}/{index}", data=parts[index]).status_code

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(send, range(len(parts)))) == {204}
        # resends in parallel with nothing else: still idempotent
        assert set(pool.map(send, [0, 5, len(parts) - 1])) == {204}
    done = requests.post(job)
    assert done.status_code == 201, done.text
    assert requests.get(server.url + ns + "/big").content == data


def test_ten_thousand_chunks_finalize_in_time(server):
    ns = fresh_namespace(server.url)
    data = os.urandom(10_000 * 16)
    reply = requests.post(
        server.url + ns + "/many;upload",
        json={"chunk-length": 16, "content-length": len(data), "content-md5": b64md5(data)},
    )
    job = server.url + reply.headers["Location"]
    parts = chunks_of(data, 16)
    local = threading.local()

    def send(index: int) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        return session.put(f"{job}/{index}", data=parts[index]).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, range(len(parts)))) == {204}
    started = time.monotonic()
    done = requests.post(job, timeout=63)
    assert done.status_code == 201, done.text
    assert time.monotonic() - started < 63
    assert requests.get(server.url + ns + "/many").content == data


def _start_chunk_and_die(server, path: str, size: int, sent: int) -> None:
    """Send the head and part of a chunk body, then SIGKILL the server."""
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + b"\0" * sent)
        time.sleep(0.5)  # the worker is now inside the chunk write
        server.kill()


def _restart(server: GunicornServer) -> GunicornServer:
    return GunicornServer(server.config, server.directory, workers=2, threads=4).start()


def test_sigkill_mid_chunk_then_resume(live_config):
    config, directory = live_config
    server = GunicornServer(config, directory, workers=2, threads=4).start()
    try:
        ns = fresh_namespace(server.url)
        data = os.urandom(4 * 1024 * 1024)
        chunk = 2 * 1024 * 1024
        reply = requests.post(
            server.url + ns + "/obj;upload",
            json={"chunk-length": chunk, "content-length": len(data), "content-md5": b64md5(data)},
        )
        job_path = reply.headers["Location"]
        assert requests.put(server.url + job_path + "/0", data=data[:chunk]).status_code == 204
        _start_chunk_and_die(server, job_path + "/1", chunk, chunk // 2)
        server = _restart(server)
        status = requests.get(server.url + job_path)
        assert status.status_code == 200
        # chunk 1's write never completed: only chunk 0 counts as received
        assert status.json()["chunks-received"] == [0]
        assert (
            requests.get(server.url + ns + "/obj").status_code == 409
        )  # bound by the job, no version yet
        assert requests.post(server.url + job_path).status_code == 409
        assert requests.put(server.url + job_path + "/1", data=data[chunk:]).status_code == 204
        assert requests.post(server.url + job_path).status_code == 201
        assert requests.get(server.url + ns + "/obj").content == data
    finally:
        server.stop()


def test_sigkill_mid_finalize(live_config):
    config, directory = live_config
    server = GunicornServer(config, directory, workers=2, threads=4).start()
    try:
        ns = fresh_namespace(server.url)
        data = os.urandom(96 * 1024 * 1024)
        chunk = 8 * 1024 * 1024
        reply = requests.post(
            server.url + ns + "/obj;upload",
            json={"chunk-length": chunk, "content-length": len(data), "content-md5": b64md5(data)},
        )
        job_path = reply.headers["Location"]
        for index, part in enumerate(chunks_of(data, chunk)):
            assert requests.put(f"{server.url}{job_path}/{index}", data=part).status_code == 204

        def finalize():
            try:
                requests.post(server.url + job_path, timeout=60)
            except requests.RequestException:
                pass

        worker = threading.Thread(target=finalize)
        worker.start()
        time.sleep(0.15)  # finalization is hashing 96 MiB now
        server.kill()
        worker.join()
        server = _restart(server)
        got = requests.get(server.url + ns + "/obj")
        if got.status_code == 200:
            # finalization had committed: the whole version, and the job is gone
            assert got.content == data
            assert requests.get(server.url + job_path).status_code == 404
        else:
            # it had not: no version at all (the job bound the object), and the job
            # can be finalized again
            assert got.status_code == 409
            assert requests.get(server.url + ns + "/obj;versions").json() == []
            assert requests.get(server.url + job_path).status_code == 200
            done = requests.post(server.url + job_path, timeout=60)
            assert done.status_code == 201, done.text
            assert requests.get(server.url + ns + "/obj").content == data
    finally:
        server.stop()

"""Several app servers on one PostgreSQL and one storage, driven concurrently.

Two gunicorn servers (different ports, two workers each) share a PostgreSQL
schema and either one storage directory or one S3 bucket (a moto server).
Concurrent clients spread their requests over both: creates of one name,
versions of one object, upload jobs whose chunks go to different servers,
and login sessions used on the other server. Nothing may be lost or
duplicated, and every acknowledged version must be readable from either
server. Finally PostgreSQL is restarted under load: requests fail cleanly
(503) or succeed, and the servers recover without being restarted.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from servers import GunicornServer

from hatrac.auth.accounts import Accounts
from hatrac.config import load_config
from hatrac.model.directory import open_directory

ROOT = {"owner": ["admin"], "subtree-owner": ["*"], "create": ["*"], "read": ["*"]}
NS = {"Content-Type": "application/x-hatrac-namespace"}
MiB = 1024 * 1024


@pytest.fixture(scope="module", params=["filesystem", "amazons3"])
def cluster(request, tmp_path_factory, postgres):
    """Two servers, one database, one storage; yields (config, [server A, server B])."""
    directory = tmp_path_factory.mktemp("scaleout")
    config = {
        "data_directory": str(directory / "shared"),
        "root_acls": ROOT,
        "database_dsn": postgres.new_schema(f"scale_{os.getpid()}_{uuid.uuid4().hex[:8]}"),
        "database_pool_size": 4,
        "password_hash_rounds": 1000,
    }
    if request.param == "amazons3":
        moto = request.getfixturevalue("moto")
        bucket = moto.create_bucket(f"scaleout-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        config["storage_backend"] = "amazons3"
        config["s3_config"] = moto.s3_config(bucket, bucket_path_prefix="hatrac")
    servers = []
    try:
        for _ in range(2):
            servers.append(GunicornServer(config, directory, workers=2, threads=4).start())
        yield config, servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def urls(cluster) -> list[str]:
    return [server.url for server in cluster[1]]


@pytest.fixture
def ns(urls) -> str:
    """A fresh namespace path (created through server A)."""
    path = f"/hatrac/scale-{uuid.uuid4().hex[:10]}"
    assert requests.put(urls[0] + path, headers=NS, timeout=30).status_code == 201
    return path


def in_parallel(function, arguments, workers: int = 16) -> list:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(function, arguments))


def test_concurrent_creates_of_one_name(urls, ns):
    def create_namespace(number: int) -> int:
        url = urls[number % 2] + ns + "/contended"
        return requests.put(url, headers=NS, timeout=60).status_code

    statuses = in_parallel(create_namespace, range(16))
    assert sorted(statuses) == [201] + [409] * 15, statuses

    def create_object(number: int) -> int:
        url = urls[number % 2] + ns + "/once"
        reply = requests.put(
            url, data=f"body {number}".encode(), headers={"If-None-Match": "*"}, timeout=60
        )
        return reply.status_code

    statuses = in_parallel(create_object, range(16))
    assert sorted(statuses) == [201] + [412] * 15, statuses
    for url in urls:
        assert requests.get(url + ns + "/once;versions", timeout=30).json().__len__() == 1

    # parents created concurrently from both servers: every PUT succeeds
    def create_deep(number: int) -> int:
        url = urls[number % 2] + ns + f"/a/b/c/obj{number}?parents=true"
        return requests.put(url, data=b"x", timeout=60).status_code

    assert in_parallel(create_deep, range(16)) == [201] * 16


def test_concurrent_versions_are_all_kept(urls, ns):
    bodies = {number: os.urandom(1000 + number) for number in range(40)}

    def put(number: int) -> tuple[str, bytes]:
        reply = requests.put(urls[number % 2] + ns + "/obj", data=bodies[number], timeout=60)
        assert reply.status_code == 201, reply.text
        return reply.text.strip(), bodies[number]

    acknowledged = in_parallel(put, range(40))
    versions = [location for location, _ in acknowledged]
    assert len(set(versions)) == 40, "duplicate version ids"
    for url in urls:
        listed = requests.get(url + ns + "/obj;versions", timeout=30).json()
        assert sorted(listed) == sorted(versions), "a version was lost"

    def read(item: tuple[int, tuple[str, bytes]]) -> None:
        number, (location, body) = item
        for url in (urls[number % 2], urls[(number + 1) % 2]):
            reply = requests.get(url + location, timeout=30)
            assert reply.status_code == 200
            assert reply.content == body

    in_parallel(read, list(enumerate(acknowledged)))
    current = [requests.get(url + ns + "/obj", timeout=30) for url in urls]
    assert current[0].content == current[1].content
    assert current[0].headers["Content-Location"] == current[1].headers["Content-Location"]


@pytest.mark.parametrize("chunk", [4096, 5 * MiB])
def test_upload_job_with_chunks_on_both_servers(urls, ns, chunk):
    data = os.urandom(3 * chunk + 123)
    count = (len(data) + chunk - 1) // chunk
    reply = requests.post(
        urls[0] + ns + "/job;upload",
        json={
            "chunk-length": chunk,
            "content-length": len(data),
            "content-md5": base64.b64encode(hashlib.md5(data).digest()).decode(),
        },
        timeout=30,
    )
    assert reply.status_code == 201, reply.text
    job = reply.text.strip()

    def send(index: int) -> int:
        piece = data[index * chunk : (index + 1) * chunk]
        return requests.put(urls[index % 2] + f"{job}/{index}", data=piece, timeout=60).status_code

    assert in_parallel(send, range(count), workers=4) == [204] * count
    # resend one chunk through the other server: idempotent
    assert requests.put(urls[1] + f"{job}/0", data=data[:chunk], timeout=60).status_code == 204
    status = requests.get(urls[0] + job, timeout=30).json()
    assert status["chunk-length"] == chunk
    done = requests.post(urls[1] + job, timeout=60)
    assert done.status_code == 201, done.text
    location = done.text.strip()
    for url in urls:
        reply = requests.get(url + location, timeout=60)
        assert reply.content == data
    assert requests.post(urls[0] + job, timeout=30).status_code == 404


def test_sessions_are_valid_on_both_servers(cluster, urls, ns):
    config = load_config(cluster[0])
    directory = open_directory(config.database_dsn)
    try:
        Accounts(directory, config).add_user(f"scaler{os.getpid()}", "pa55word")
    except Exception as error:  # the user exists from the other storage's run
        if "exist" not in str(error):
            raise
    finally:
        directory.close()
    browser = requests.Session()
    reply = browser.post(
        urls[0] + "/authn/session",
        data={"username": f"scaler{os.getpid()}", "password": "pa55word"},
        timeout=30,
    )
    assert reply.status_code == 201, reply.text
    cookie = {"webauthn": browser.cookies["webauthn"]}
    # created through B with the session from A, owned by that user
    assert (
        requests.put(urls[1] + ns + "/mine", data=b"x", cookies=cookie, timeout=30).status_code
        == 201
    )
    owners = requests.get(urls[0] + ns + "/mine;acl/owner", cookies=cookie, timeout=30)
    assert owners.json() == [f"scaler{os.getpid()}"]
    assert requests.get(urls[1] + "/authn/session", cookies=cookie, timeout=30).status_code == 200
    # logout on B is effective on A at once
    assert (
        requests.delete(urls[1] + "/authn/session", cookies=cookie, timeout=30).status_code == 204
    )
    reply = requests.put(urls[0] + ns + "/mine2", data=b"x", cookies=cookie, timeout=30)
    assert reply.status_code == 401


def test_postgres_restart_under_load(postgres, urls, ns):
    """Requests in flight during a restart fail cleanly or succeed; then all succeed."""
    stop = threading.Event()
    seen: list[int] = []
    acknowledged: list[str] = []

    def load(number: int) -> None:
        session = requests.Session()
        count = 0
        while not stop.is_set():
            count += 1
            url = urls[(number + count) % 2]
            try:
                if count % 2:
                    reply = session.put(url + ns + f"/load{number}", data=b"%d" % count, timeout=60)
                    if reply.status_code == 201:
                        acknowledged.append(reply.text.strip())
                else:
                    reply = session.get(url + ns + f"/load{number}", timeout=60)
            except requests.ConnectionError:
                seen.append(-1)
                continue
            seen.append(reply.status_code)
            if reply.status_code >= 500:
                assert reply.status_code == 503, reply.text
                assert "retry" in reply.text.lower() or "unavailable" in reply.text.lower()

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(load, number) for number in range(6)]
        try:
            time.sleep(1.0)
            postgres.restart()
            time.sleep(1.5)
        finally:
            stop.set()
        for future in futures:
            future.result()
    assert -1 not in seen, "a server dropped a connection"
    assert set(seen) <= {200, 201, 404, 409, 503}, sorted(set(seen))

    # recovered without restarting the app servers
    deadline = time.monotonic() + 20
    while True:
        replies = [requests.put(url + ns + "/after", data=b"ok", timeout=30) for url in urls]
        if all(r.status_code == 201 for r in replies) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [r.status_code for r in replies] == [201, 201], [r.text for r in replies]
    for location in acknowledged:
        for url in urls:
            assert requests.get(url + location, timeout=30).status_code == 200

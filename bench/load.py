"""The load client: several processes, each with one keep-alive HTTP connection.

Every figure of the benchmark comes from here, and the service is reached
only over HTTP from these child processes. ``http.client`` keeps the client
cheap per request; whether it is fast enough is checked in every run by
pointing the same code at nginx's 1 KiB file (the ``client_capacity``
figure, which must sit far above every service figure).

A plan says what each request is:

* ``{"kind": "get", "paths": [...]}``: GET paths in turn (each client starts elsewhere);
* ``{"kind": "put", "prefix": "/hatrac/ns/", "size": 1024}``: PUT new objects
  ``PREFIX cW-N`` with a body of ``size`` bytes;
* ``{"kind": "mix", "get_fraction": 0.9, ...}``: both, chosen at random with a fixed seed.

``"variants": [{...}, {...}]`` in a plan gives client ``i`` the plan updated
with variant ``i % n``: two kinds of requests measured at the same moment, on
the same machine load (:func:`run_variants` returns one result per variant).

``headers`` in a plan are sent with every request (e.g. a session cookie).
``reconnect_every``: each client closes its connection after that many
requests and opens a new one for the next (whose time includes the connect),
so that which server process serves which client is drawn again.
Large transfers (:func:`large_put`, :func:`large_get`, :func:`upload_job`)
run in child processes too.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import multiprocessing
import os
import random
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, Optional

MIB = 1024 * 1024
CONTEXT = multiprocessing.get_context("fork")


@dataclass
class LoadResult:
    """What a load run measured: completed requests, failures, wall time, latencies."""

    ops: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list = field(default_factory=list)
    first_error: Optional[str] = None
    created: list = field(default_factory=list)  # paths of the objects PUT successfully

    @property
    def rate(self) -> float:
        return self.ops / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, fraction: float) -> float:
        """A latency percentile in milliseconds (nearest rank)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, int(round(fraction * len(ordered))) - 1))
        return ordered[index] * 1000

    def summary(self) -> dict:
        return {
            "ops_per_s": round(self.rate, 1),
            "p50_ms": round(self.percentile(0.50), 2),
            "p99_ms": round(self.percentile(0.99), 2),
            "requests": self.ops,
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": round(self.elapsed, 2),
        }


def _connect(base_url: str, timeout: float = 120) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    connection.blocksize = MIB  # file bodies are sent in 1 MiB reads
    return connection


class Requester:
    """One keep-alive connection that reconnects once if the server closed it."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.connection = _connect(base_url)

    def request(self, method: str, path: str, body=None, headers=None):
        """Send one request; return (status, response headers, body bytes)."""
        for attempt in (0, 1):
            try:
                self.connection.request(method, path, body=body, headers=headers or {})
                reply = self.connection.getresponse()
                data = reply.read()
                return reply.status, reply, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.connection.close()
                self.connection = _connect(self.base_url)
                if attempt:
                    raise
                if hasattr(body, "seek"):
                    body.seek(0)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


def _client(index, base_url, plan, count, duration, barrier, queue) -> None:
    variants = plan.get("variants")
    if variants:  # client i runs variant i % n (e.g. anonymous and session clients at once)
        plan = {**plan, **variants[index % len(variants)]}
    headers = dict(plan.get("headers", {}))
    kind = plan["kind"]
    paths = plan.get("paths") or []
    body = b"b" * plan.get("size", 1024)
    put_headers = dict(headers, **{"Content-Type": "application/octet-stream"})
    chooser = random.Random(index)
    get_fraction = plan.get("get_fraction", 1.0 if kind == "get" else 0.0)
    prefix = plan.get("prefix", "")
    reconnect_every = plan.get("reconnect_every")
    requester = Requester(base_url)
    result = LoadResult()
    latencies = result.latencies
    cursor = chooser.randrange(len(paths)) if paths else 0
    serial = 0
    # one warm-up request opens the connection before the clock starts
    if paths:
        requester.request("GET", paths[0], headers=headers)
    barrier.wait()
    start = time.monotonic()
    deadline = start + duration if duration else None
    done = 0
    while True:
        if count is not None and done >= count:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        if kind == "get" or (kind == "mix" and chooser.random() < get_fraction):
            method, path, payload, sent = "GET", paths[cursor % len(paths)], None, headers
            cursor += 1
            expected = (200,)
        else:
            method, path, payload, sent = "PUT", f"{prefix}c{index}-{serial}", body, put_headers
            serial += 1
            expected = (200, 201)
        began = time.monotonic()
        try:
            status, _, data = requester.request(method, path, payload, sent)
        except OSError as error:
            status, data = 0, str(error).encode()
        latencies.append(time.monotonic() - began)
        done += 1
        if reconnect_every and done % reconnect_every == 0:
            requester.close()  # the next request connects again (timed, as any request)
            requester = Requester(base_url)
        if status in expected:
            result.ops += 1
            if method == "PUT":
                result.created.append(path)
        else:
            result.errors += 1
            if result.first_error is None:
                result.first_error = f"{method} {path}: {status} {data[:200]!r}"
    end = time.monotonic()
    requester.close()
    queue.put((index, start, end, result))


def run_load(
    base_url: str,
    plan: dict,
    clients: int = 8,
    count: Optional[int] = None,
    duration: Optional[float] = None,
) -> LoadResult:
    """Run ``clients`` processes, each doing ``count`` requests or running ``duration`` s."""
    parts = _run_clients(base_url, plan, clients, count, duration)
    return _combine(parts, parts)


def run_variants(
    base_url: str,
    plan: dict,
    clients: int = 8,
    count: Optional[int] = None,
    duration: Optional[float] = None,
) -> list[LoadResult]:
    """Like :func:`run_load`, with ``plan["variants"]`` run side by side: one result each."""
    variants = len(plan["variants"])
    parts = _run_clients(base_url, plan, clients, count, duration)
    return [
        _combine([part for part in parts if part[0] % variants == number], parts)
        for number in range(variants)
    ]


def _run_clients(base_url, plan, clients, count, duration) -> list[tuple]:
    """Start the client processes together; their (index, start, end, result) parts."""
    barrier = CONTEXT.Barrier(clients)
    queue = CONTEXT.Queue()
    processes = [
        CONTEXT.Process(
            target=_client, args=(i, base_url, plan, count, duration, barrier, queue), daemon=True
        )
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    parts = [queue.get(timeout=3600) for _ in processes]
    for process in processes:
        process.join()
    return parts


def _combine(mine: list[tuple], every: list[tuple]) -> LoadResult:
    """One result of the clients in ``mine``, over the time all of ``every`` ran."""
    total = LoadResult()
    for _, _, _, result in mine:
        total.ops += result.ops
        total.errors += result.errors
        total.latencies.extend(result.latencies)
        total.first_error = total.first_error or result.first_error
        total.created.extend(result.created)
    total.elapsed = max(part[2] for part in every) - min(part[1] for part in every)
    return total


class Unavailable(Exception):
    """The service does not offer what a workload needs (yet)."""


def in_child(function: Callable, *args):
    """Run ``function(*args)`` in a separate process and return its (picklable) result."""
    queue = CONTEXT.Queue()

    def target():
        try:
            queue.put(("ok", function(*args)))
        except Unavailable as error:
            queue.put(("unavailable", str(error)))
        except BaseException as error:  # report it to the parent, whatever it is
            queue.put(("error", f"{type(error).__name__}: {error}"))

    process = CONTEXT.Process(target=target)  # not a daemon: it may start processes itself
    process.start()
    outcome, value = queue.get(timeout=3600)
    process.join()
    if outcome == "unavailable":
        raise Unavailable(value)
    if outcome == "error":
        raise RuntimeError(value)
    return value


def _large_put(base_url: str, path: str, source: str) -> dict:
    size = os.path.getsize(source)
    requester = Requester(base_url)
    with open(source, "rb") as body:
        began = time.monotonic()
        status, _, data = requester.request(
            "PUT",
            path,
            body,
            {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        elapsed = time.monotonic() - began
    requester.close()
    if status not in (200, 201):
        raise RuntimeError(f"PUT {path}: {status} {data[:300]!r}")
    return {"seconds": elapsed, "bytes": size}


def large_put(base_url: str, path: str, source: str) -> dict:
    """PUT a file's bytes as one request body, streamed in 1 MiB reads."""
    return in_child(_large_put, base_url, path, source)


def _large_get(base_url: str, path: str) -> dict:
    connection = _connect(base_url)
    buffer = bytearray(MIB)
    view = memoryview(buffer)
    started_at = time.time()
    began = time.monotonic()
    connection.request("GET", path)
    reply = connection.getresponse()
    headers = time.monotonic() - began
    if reply.status != 200:
        raise RuntimeError(f"GET {path}: {reply.status} {reply.read(300)!r}")
    received = 0
    while True:
        got = reply.readinto(view)
        if not got:
            break
        received += got
    elapsed = time.monotonic() - began
    connection.close()
    # when it began (wall clock, to match with other records) and its time to the headers
    return {
        "seconds": elapsed,
        "bytes": received,
        "started_at": started_at,
        "headers_s": round(headers, 4),
    }


def large_get(base_url: str, path: str) -> dict:
    """GET a large body into a reused 1 MiB buffer, discarding it."""
    return in_child(_large_get, base_url, path)


def _send_chunks(base_url: str, job: str, source: str, chunk: int, numbers: list, md5s=None) -> int:
    requester = Requester(base_url)
    sent = 0
    with open(source, "rb") as handle:
        fd = handle.fileno()
        for number in numbers:
            data = os.pread(fd, chunk, number * chunk)
            headers = {"Content-Type": "application/octet-stream"}
            if md5s is not None:
                headers["Content-MD5"] = md5s[number]
            status, _, reply = requester.request("PUT", f"{job}/{number}", data, headers)
            if status not in (200, 201, 204):
                raise RuntimeError(f"PUT chunk {number}: {status} {reply[:300]!r}")
            sent += len(data)
    requester.close()
    return sent


def _chunk_stream(base_url, job, source, chunk, numbers, barrier, queue, md5s=None) -> None:
    try:
        barrier.wait()
        queue.put(("ok", _send_chunks(base_url, job, source, chunk, numbers, md5s)))
    except BaseException as error:  # report it to the parent, whatever it is
        queue.put(("error", f"{type(error).__name__}: {error}"))


def chunk_md5s(source: str, chunk: int) -> list[str]:
    """The base64 MD5 of each ``chunk`` bytes of ``source``."""
    found = []
    with open(source, "rb") as handle:
        while data := handle.read(chunk):
            found.append(base64.b64encode(hashlib.md5(data).digest()).decode("ascii"))
    return found


def upload_job(
    base_url: str, path: str, source: str, chunk: int, streams: int, chunk_md5: bool = False
) -> dict:
    """Create an upload job, send its chunks over ``streams`` connections, finalize it.

    The time covers all three steps. With ``chunk_md5``, each chunk carries its
    ``Content-MD5`` (computed before the clock starts), which the server
    verifies: the server's share of what ``hatrac-client put`` costs.
    Raises :class:`Unavailable` when the service has no working ``;upload``
    resource.
    """
    size = os.path.getsize(source)
    md5s = chunk_md5s(source, chunk) if chunk_md5 else None
    control = Requester(base_url)
    began = time.monotonic()
    try:
        status, reply, data = control.request(
            "POST",
            f"{path};upload?parents=true",
            json.dumps(
                {
                    "chunk-length": chunk,
                    "content-length": size,
                    "content-type": "application/octet-stream",
                }
            ),
            {"Content-Type": "application/json"},
        )
    except OSError as error:
        raise Unavailable(f"job creation failed: {error}") from None
    if status != 201:
        raise Unavailable(f"POST {path};upload answered {status}: {data[:200]!r}")
    job = reply.getheader("Location") or data.decode().strip().splitlines()[0]
    job = urllib.parse.urlsplit(job).path or job
    chunks = (size + chunk - 1) // chunk
    barrier = CONTEXT.Barrier(streams)
    queue = CONTEXT.Queue()
    processes = [
        CONTEXT.Process(
            target=_chunk_stream,
            args=(
                base_url,
                job,
                source,
                chunk,
                list(range(k, chunks, streams)),
                barrier,
                queue,
                md5s,
            ),
            daemon=True,
        )
        for k in range(streams)
    ]
    for process in processes:
        process.start()
    outcomes = [queue.get(timeout=3600) for _ in processes]
    for process in processes:
        process.join()
    failures = [value for outcome, value in outcomes if outcome == "error"]
    if failures:
        raise Unavailable(f"chunk upload failed: {failures[0]}")
    chunks_done = time.monotonic()
    status, _, data = control.request("POST", job, b"", {"Content-Length": "0"})
    elapsed = time.monotonic() - began
    control.close()
    if status not in (200, 201):
        raise Unavailable(f"finalizing {job} answered {status}: {data[:200]!r}")
    return {
        "seconds": elapsed,
        "bytes": size,
        "finalize_seconds": round(elapsed - (chunks_done - began), 3),
    }


def _pg_client(index, dsn, duration, barrier, queue) -> None:
    import psycopg2

    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    cursor = connection.cursor()
    result = LoadResult()
    barrier.wait()
    start = time.monotonic()
    deadline = start + duration
    serial = 0
    while time.monotonic() < deadline:
        began = time.monotonic()
        cursor.execute(
            "INSERT INTO bench_roundtrip (client, serial, payload) VALUES (%s, %s, %s)"
            " RETURNING id",
            (index, serial, "x" * 64),
        )
        (row_id,) = cursor.fetchone()
        cursor.execute("SELECT payload FROM bench_roundtrip WHERE id = %s", (row_id,))
        cursor.fetchone()
        result.latencies.append(time.monotonic() - began)
        result.ops += 1
        serial += 1
    end = time.monotonic()
    connection.close()
    queue.put((index, start, end, result))


def pg_roundtrips(dsn: str, clients: int, duration: float) -> LoadResult:
    """Committed single-row INSERT then SELECT by key, from ``clients`` processes."""
    import psycopg2

    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_roundtrip (id bigserial PRIMARY KEY,"
            " client int, serial int, payload text)"
        )
    barrier = CONTEXT.Barrier(clients)
    queue = CONTEXT.Queue()
    processes = [
        CONTEXT.Process(target=_pg_client, args=(i, dsn, duration, barrier, queue), daemon=True)
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    parts = [queue.get(timeout=3600) for _ in processes]
    for process in processes:
        process.join()
    total = LoadResult()
    total.elapsed = max(p[2] for p in parts) - min(p[1] for p in parts)
    for part in parts:
        total.ops += part[3].ops
        total.latencies.extend(part[3].latencies)
    return total


def _fsync_writer(index, directory, duration, barrier, queue) -> None:
    body = b"f" * 1024
    target = os.path.join(directory, f"w{index}")
    os.makedirs(target, exist_ok=True)
    result = LoadResult()
    directory_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    barrier.wait()
    start = time.monotonic()
    deadline = start + duration
    serial = 0
    while time.monotonic() < deadline:
        began = time.monotonic()
        temp = os.path.join(target, f"{serial}.part")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        os.write(fd, body)
        os.fsync(fd)
        os.close(fd)
        os.rename(temp, os.path.join(target, str(serial)))
        os.fsync(directory_fd)
        result.latencies.append(time.monotonic() - began)
        result.ops += 1
        serial += 1
    end = time.monotonic()
    os.close(directory_fd)
    queue.put((index, start, end, result))


def small_file_fsyncs(directory: str, clients: int, duration: float) -> LoadResult:
    """Durable 1 KiB file creations (write, fsync, rename, directory fsync), as a PUT does."""
    barrier = CONTEXT.Barrier(clients)
    queue = CONTEXT.Queue()
    processes = [
        CONTEXT.Process(
            target=_fsync_writer, args=(i, directory, duration, barrier, queue), daemon=True
        )
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    parts = [queue.get(timeout=3600) for _ in processes]
    for process in processes:
        process.join()
    total = LoadResult()
    total.elapsed = max(p[2] for p in parts) - min(p[1] for p in parts)
    for part in parts:
        total.ops += part[3].ops
        total.latencies.extend(part[3].latencies)
    return total

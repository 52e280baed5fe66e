"""Large transfers over HTTP, each timed in a child process: a PUT, a GET, an upload job.

:func:`large_put` streams a file as one request body, :func:`large_get` reads
a body into a reused buffer, :func:`upload_job` creates a chunked upload job,
sends its chunks over several connections at once and finalizes it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import urllib.parse

from .load import MIB, Requester, Unavailable, connect, in_child, run_processes


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
    connection = connect(base_url)
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


def _chunk_stream(
    index, base_url, job, source, chunk, chunks, streams, md5s, barrier, queue
) -> None:
    """Stream ``index`` of ``streams``: it sends chunks ``index``, ``index + streams``..."""
    numbers = list(range(index, chunks, streams))
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
    outcomes = run_processes(
        _chunk_stream, streams, base_url, job, source, chunk, chunks, streams, md5s
    )
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

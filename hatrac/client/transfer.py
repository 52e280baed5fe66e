"""Moving one file: ``put`` (a PUT, or a parallel resumable upload job) and ``get``.

**put.** Files up to ``threshold`` go in one PUT with ``Content-MD5`` and
``Content-SHA256``. Larger ones go by upload job: the file's SHA-256 is
computed first and given as the job's ``content-sha256`` (so the server
refuses to finalize other bytes), and meanwhile the other CPUs compute the
first chunks' ``Content-MD5`` (or ``Content-SHA256``, or none:
``chunk_digest``); chunks are then sent by ``streams`` threads, each read
into a reused buffer and sent from it with its digest (computed there for
the chunks the pre-pass did not reach). Before
creating a job, the jobs this client remembers making (:mod:`.settings`)
and those the server lists are asked for one of the same size and
SHA-256; if there is one, its status's ``chunks-received`` (an extension
of this server) says which chunks to skip. A server without that field
gets every chunk again (chunk PUTs are idempotent), which is slower but
safe.

**get.** :func:`get_file` finds the version and its digest (HEAD), then
hands the transfer to :mod:`.download` (parallel ranged parts into a
partial file, verified before the rename; synced only with ``fsync``), or
streams it to stdout.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import sys
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Optional

import requests

from . import settings
from .download import PART_SIZE, Download, fetch_range, verify
from .hashing import (
    BufferBody,
    FileSlice,
    chunk_digest_of,
    file_digests,
    file_sha256_and_chunk_digests,
    hex_to_b64,
)
from .http import EXIT_CONFLICT, Connection, HatracError, urlpath
from .locations import RemotePath, split_version
from .output import Bar, Output

MiB = 1024 * 1024
NAMESPACE_TYPE = "application/x-hatrac-namespace"


@dataclass
class PutOptions:
    """How ``put`` sends files."""

    parents: bool = False
    content_type: Optional[str] = None
    threshold: int = 64 * MiB
    chunk_size: int = 16 * MiB
    streams: int = 4
    resume: bool = True
    chunk_digest: Optional[str] = "md5"  # each chunk's Content-MD5 ("md5"), SHA256, or none


# -- what is on the server --------------------------------------------------------------
def describe(conn: Connection, target: RemotePath) -> Optional[dict]:
    """What ``target`` is (HEAD): kind, size, digests, type, version; None if absent."""
    response = conn.head(target, ok=(200, 404, 409))
    if response.status_code == 404:
        return None
    headers = response.headers
    location = headers.get("Content-Location")
    version = split_version(urlpath(location))[1] if location else None
    if response.status_code == 409:  # an object without a current version
        return {"kind": "object", "url": target.resource, "version": None, "size": None}
    if version is None and not headers.get("Content-MD5") and not headers.get("Content-SHA256"):
        return {"kind": "namespace", "url": target.resource}
    return {
        "kind": "object",
        "url": target.resource,
        "version": version,
        "version_url": urlpath(location) if location else target.resource,
        "size": int(headers.get("Content-Length", 0)),
        "content-type": headers.get("Content-Type"),
        "content-md5": hex_to_b64(headers["Content-MD5"]) if "Content-MD5" in headers else None,
        "content-sha256": (
            hex_to_b64(headers["Content-SHA256"]) if "Content-SHA256" in headers else None
        ),
        "content-disposition": headers.get("Content-Disposition"),
        "last-modified": headers.get("Last-Modified"),
        "etag": headers.get("ETag"),
    }


def _created_url(response: requests.Response) -> str:
    text = response.text.strip().splitlines()
    if text:
        return urlpath(text[-1].strip())
    return urlpath(response.headers.get("Location", ""))


def _query(parents: bool) -> str:
    return "?parents=true" if parents else ""


# -- put ------------------------------------------------------------------------------
def put_file(
    conn: Connection,
    local: str,
    target: RemotePath,
    options: PutOptions,
    output: Output,
    total_bar: Optional[Bar] = None,
) -> dict:
    """Store a local file as a new version of ``target``; a result record."""
    size = os.stat(local).st_size
    content_type = options.content_type or mimetypes.guess_type(local)[0]
    content_type = content_type or "application/octet-stream"
    with output.bar(size, os.path.basename(local)) as bar:

        def sent(count: int, already: bool = False) -> None:
            if conn.throttle is not None and not already:
                conn.throttle.spend(count)
            bar.update(count)
            if total_bar is not None:
                total_bar.update(count)

        if size <= options.threshold:
            return _put_whole(conn, local, size, target, options, content_type, sent)
        return _put_job(conn, local, size, target, options, content_type, sent, output)


def _put_whole(
    conn: Connection,
    local: str,
    size: int,
    target: RemotePath,
    options: PutOptions,
    content_type: str,
    sent: Callable[..., None],
) -> dict:
    digests = file_digests(local)
    headers = {
        "Content-Type": content_type,
        "Content-MD5": digests["md5"],
        "Content-SHA256": digests["sha256"],
    }
    fd = os.open(local, os.O_RDONLY)
    try:
        # a fresh slice for every attempt: a retry sends the body from its start
        response = conn.request(
            "PUT",
            target.path + _query(options.parents),
            headers={**headers, "Content-Length": str(size)},
            body=lambda: FileSlice(fd, 0, size, sent) if size else b"",
            ok=(200, 201),
        )
    finally:
        os.close(fd)
    return {
        "action": "put",
        "source": local,
        "target": target.path,
        "version": _created_url(response),
        "size": size,
        "content-sha256": digests["sha256"],
        "content-md5": digests["md5"],
    }


def _listed_jobs(conn: Connection, target: RemotePath) -> list[str]:
    """The client's open jobs on ``target`` as the server lists them (none for an
    anonymous client: its jobs are known only by their URLs)."""
    try:
        response = conn.request(
            "GET", target.path + ";upload", headers={"Accept": "application/json"}, ok=(200, 404)
        )
        jobs = response.json() if response.status_code == 200 else []
    except (HatracError, ValueError):  # resuming is best-effort: creating the job says why
        return []
    return [urlpath(str(job)) for job in jobs] if isinstance(jobs, list) else []


def _find_job(conn: Connection, target: RemotePath, size: int, sha256: str) -> Optional[dict]:
    """An open job of this client for the same bytes, with its status: one this
    client made and remembered (the only way for an anonymous one), or one the
    server lists."""
    remembered = settings.remembered_jobs(conn.origin, target.path, size, sha256)
    for job in dict.fromkeys(remembered + _listed_jobs(conn, target)):
        try:
            status = conn.get_json(job)
        except HatracError as error:
            if error.status in (403, 404) and job in remembered:
                settings.forget_job(conn.origin, target.path, job)
            continue
        if not isinstance(status, dict):
            continue
        given = status.get("content-sha256") or status.get("content_sha256")
        length = status.get("content-length", status.get("total_bytes"))
        chunk = status.get("chunk-length", status.get("chunk_bytes"))
        if length == size and given and hex_to_b64(given) == sha256 and isinstance(chunk, int):
            status["url"] = job
            return status
    return None


def _put_job(
    conn: Connection,
    local: str,
    size: int,
    target: RemotePath,
    options: PutOptions,
    content_type: str,
    sent: Callable[..., None],
    output: Output,
) -> dict:
    # before any request: the whole SHA-256 (the job's content-sha256) and,
    # on the other CPUs meanwhile, as many chunk digests as fit in that time
    sha256, digests = file_sha256_and_chunk_digests(local, options.chunk_size, options.chunk_digest)
    job = _find_job(conn, target, size, sha256) if options.resume else None
    received: set = set()
    if job is not None:
        job_url, chunk = job["url"], job.get("chunk-length", job.get("chunk_bytes"))
        listed = job.get("chunks-received")
        if isinstance(listed, list):
            received = {n for n in listed if isinstance(n, int)}
        output.info(f"resuming upload job {job_url} ({len(received)} chunk(s) already there)")
        if chunk != options.chunk_size:
            digests = None  # the job's chunks are not ours: each is hashed as it is sent
    else:
        chunk = options.chunk_size
        spec = {
            "chunk-length": chunk,
            "content-length": size,
            "content-type": content_type,
            "content-sha256": sha256,
        }
        response = conn.request(
            "POST", target.path + ";upload" + _query(options.parents), json_body=spec, ok=(201,)
        )
        job_url = _created_url(response)
        settings.remember_job(conn.origin, target.path, size, sha256, job_url)
    count = -(-size // chunk)
    missing = [n for n in range(count) if n not in received]
    sent(sum(min(chunk, size - n * chunk) for n in received), True)
    fd = os.open(local, os.O_RDONLY)
    try:
        _send_chunks(conn, fd, job_url, size, chunk, missing, options, sent, digests)
    finally:
        os.close(fd)
    version = _finalize(conn, job_url, target, sha256)
    settings.forget_job(conn.origin, target.path, job_url)
    return {
        "action": "put",
        "source": local,
        "target": target.path,
        "version": version,
        "size": size,
        "content-sha256": sha256,
        "job": job_url,
        "chunks": count,
        "chunks-sent": len(missing),
        "resumed": job is not None,
    }


DIGEST_HEADERS = {"md5": "Content-MD5", "sha256": "Content-SHA256"}


def _send_chunks(
    conn: Connection,
    fd: int,
    job_url: str,
    size: int,
    chunk: int,
    numbers: list[int],
    options: PutOptions,
    sent: Callable[..., None],
    digests: Optional[list[Optional[str]]] = None,
) -> None:
    """Send chunks ``numbers`` over ``options.streams`` threads. Each thread reads
    its chunk once into a buffer of its own (reused) and sends it from memory,
    with its digest from ``digests`` (computed before), or hashed there when
    there are none (a resumed job of another chunk size)."""
    failed = threading.Event()
    buffers = threading.local()
    streams = max(1, options.streams)

    def send(number: int) -> None:
        if failed.is_set():
            return
        offset = number * chunk
        length = min(chunk, size - offset)
        if getattr(buffers, "data", None) is None or len(buffers.data) < length:
            buffers.data = bytearray(length)
        view = memoryview(buffers.data)[:length]
        if os.preadv(fd, [view], offset) != length:
            raise OSError("the file became shorter while it was being sent")
        headers = {"Content-Length": str(length)}
        name = options.chunk_digest
        if name:
            given = digests[number] if digests is not None else None
            headers[DIGEST_HEADERS[name]] = given or chunk_digest_of(view, name)
        conn.request(
            "PUT",
            f"{job_url}/{number}",
            headers=headers,
            body=lambda: BufferBody(view, sent),
            ok=(200, 201, 204),
        )

    with ThreadPoolExecutor(max_workers=max(1, streams)) as pool:
        futures = [pool.submit(send, n) for n in numbers]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            if future.exception() is not None:
                failed.set()
                for other in futures:
                    other.cancel()
                error = future.exception()
                if isinstance(error, HatracError):
                    error.message += (
                        f"; the upload job {job_url} stays open: run the same command "
                        "again to resume it"
                    )
                raise error


def _finalize(conn: Connection, job_url: str, target: RemotePath, sha256: str) -> str:
    try:
        return _created_url(conn.request("POST", job_url, ok=(200, 201)))
    except HatracError as error:
        if error.status != 404:
            raise
        # a retried finalize whose first attempt succeeded: the job is gone, the version there
        found = describe(conn, target.without_version())
        if found and found.get("content-sha256") == sha256:
            return found["version_url"]
        raise


# -- get ------------------------------------------------------------------------------
def get_file(
    conn: Connection,
    target: RemotePath,
    dest: str,
    output: Output,
    info: Optional[dict] = None,
    total_bar: Optional[Bar] = None,
    streams: int = 4,
    part_size: int = PART_SIZE,
    fsync: bool = False,
) -> dict:
    """Fetch an object (or version) into ``dest`` (``-``: stdout), verified; with
    ``fsync``, durable on disk before it returns."""
    info = info or describe(conn, target)
    if info is None:
        raise HatracError(f"{target.display()} does not exist", 404)
    if info["kind"] != "object":
        raise HatracError(f"{target.display()} is a namespace; use get -r", exit_code=EXIT_CONFLICT)
    if info.get("version") is None and info.get("size") is None:
        raise HatracError(f"{target.display()} has no current version", 409)
    size = info["size"]
    source = info["version_url"]
    expected = ("sha256", info["content-sha256"]) if info.get("content-sha256") else None
    if expected is None and info.get("content-md5"):
        expected = ("md5", info["content-md5"])
    with output.bar(size, target.basename) as bar:

        def got(count: int, already: bool = False) -> None:
            if conn.throttle is not None and not already:
                conn.throttle.spend(count)
            bar.update(count)
            if total_bar is not None:
                total_bar.update(count)

        if dest == "-":
            digest = hashlib.new(expected[0]) if expected else None
            out = sys.stdout.buffer

            def deliver(block: memoryview, offset: int) -> None:
                out.write(block)
                if digest is not None:
                    digest.update(block)

            fetch_range(conn, source, 0, size, size, deliver, got)
            out.flush()
            verify(digest, expected, target)
            resumed_from, parts, streams = 0, 1, 1
        else:
            download = Download(conn, source, size, dest, expected, streams, got, part_size, fsync)
            resumed_from = download.run(target)
            parts, streams = download.count, download.streams
    return {
        "action": "get",
        "source": source,
        "target": dest,
        "size": size,
        "resumed-from": resumed_from,
        "parts": parts,
        "streams": streams,
        "verified": expected[0] if expected else None,
    }

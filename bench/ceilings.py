"""The machine's own ceilings, measured in the same run as the service.

* disk: sequential write of the large-object size with ``dd conv=fsync``, and
  an uncached (``iflag=direct``) sequential read of it; durable 1 KiB file
  creations (write, fsync, rename, fsync of the directory) by 8 processes,
  which bound a small PUT from below whatever the software does;
* nginx: the same large file and a 1 KiB file over loopback (sendfile on);
  the 1 KiB figure is also the load client's capacity;
* the minimal Flask app (:mod:`bench.minimal_app`) under the service's gunicorn settings;
* PostgreSQL: a committed single-row INSERT then SELECT by key, on the same server.

``wrk`` (C, from Debian), when installed, cross-checks the small GET rates.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Optional

from .load import MIB, LoadResult, combine, in_child, run_load, run_processes
from .transfers import large_get, large_put


def _dd(arguments: list[str]) -> dict:
    result = subprocess.run(["dd", *arguments], capture_output=True, text=True, check=True)
    # "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.31 s, 465 MB/s"
    match = re.search(r"(\d+) bytes .* copied, ([\d.,e-]+) s", result.stderr)
    if not match:
        raise RuntimeError(f"cannot read dd's report: {result.stderr}")
    size, seconds = int(match.group(1)), float(match.group(2).replace(",", "."))
    return {"bytes": size, "seconds": seconds, "mib_per_s": round(size / MIB / seconds, 1)}


def small_files(directory: Path, clients: int, duration: float) -> dict:
    """Durable 1 KiB file creations per second by ``clients`` processes (what a PUT must do)."""
    target = Path(directory) / "fsync_ceiling"
    try:
        return small_file_fsyncs(str(target), clients, duration).summary()
    finally:
        shutil.rmtree(target, ignore_errors=True)


def _dd_write(target: Path, size: int) -> dict:
    block = 8 * MIB if size >= 64 * MIB else MIB
    return _dd(
        ["if=/dev/zero", f"of={target}", f"bs={block}", f"count={max(1, size // block)}"]
        + ["conv=fsync"]
    )


def disk_write(directory: Path, size: int) -> dict:
    """Sequential write of ``size`` bytes, fsync'd before dd exits, in MiB/s (one sample)."""
    target = Path(directory) / "dd_ceiling.bin"
    try:
        return _dd_write(target, size)
    finally:
        target.unlink(missing_ok=True)


def disk_write_new(target: Path, size: int) -> dict:
    """dd of ``size`` bytes into the new file ``target``, fsync'd; the file is *kept*.

    The ceiling of a service step that writes a new file of that size: the
    caller removes the file only when the round ends, with the service's own
    files. A dd that unlinks its file at once hands its blocks to the next
    writer, and on a thin-provisioned virtual disk (this machine's) writing
    blocks that were written a moment ago is 2-4x faster than writing others:
    the upload rounds' dd once read 1,285 MiB/s that way, the service's
    fresh files about 330 (docs/benchmark.md, "The dd ceiling").
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    return _dd_write(target, size)


def disk_write_direct(target: Path, size: int) -> dict:
    """dd of ``size`` bytes into the new file ``target`` past the page cache
    (``oflag=direct``), fsync'd; the file is kept, as :func:`disk_write_new`'s.

    What the disk itself takes, whatever the state of the memory: a buffered
    write into pages the kernel has not used for a while costs, on a virtual
    machine that hands idle memory back to its host, a host fault per page,
    so buffered dd reads 300 or 1,300 MiB/s on the same disk depending on
    whether freed pages were at hand (docs/benchmark.md, "The dd ceiling").
    Informational: the targets are against the buffered dd.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    block = 8 * MIB if size >= 64 * MIB else MIB
    return _dd(
        ["if=/dev/zero", f"of={target}", f"bs={block}", f"count={max(1, size // block)}"]
        + ["oflag=direct", "conv=fsync"]
    )


def disk(directory: Path, size: int) -> dict:
    """Sequential write (fsync'd before dd exits) and uncached read, in MiB/s."""
    block = 8 * MIB if size >= 64 * MIB else MIB
    target = Path(directory) / "dd_ceiling.bin"
    try:
        write = _dd_write(target, size)
        try:
            read = _dd([f"if={target}", "of=/dev/null", f"bs={block}", "iflag=direct"])
        except subprocess.CalledProcessError:  # a filesystem without O_DIRECT
            read = _dd([f"if={target}", "of=/dev/null", f"bs={block}"])
    finally:
        target.unlink(missing_ok=True)
    return {"write_fsync": write, "read": read}


def wrk_rate(
    url: str, clients: int, duration: float, headers: Optional[dict] = None
) -> Optional[dict]:
    """Requests/s, request count and latency of ``wrk`` on one URL (sending
    ``headers``), or None when wrk is not installed."""
    binary = shutil.which("wrk")
    if binary is None:
        return None
    seconds = max(1, int(round(duration)))
    sent = [
        option for name, value in (headers or {}).items() for option in ("-H", f"{name}: {value}")
    ]
    result = subprocess.run(
        [binary, "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", *sent, url],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if not match:
        return None
    figures: dict = {"ops_per_s": float(match.group(1))}
    count = re.search(r"(\d+) requests in", result.stdout)
    if count:
        figures["requests"] = int(count.group(1))
    for label, key in (("50%", "p50_ms"), ("99%", "p99_ms")):
        found = re.search(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)", result.stdout)
        if found:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
            figures[key] = round(float(found.group(1)) * scale, 2)
    return figures


def nginx_large(base_url: str, large_path: str) -> dict:
    """nginx sending the large file over loopback, in MiB/s."""
    transfer = large_get(base_url, large_path)
    return {
        "large_get": {
            "mib_per_s": round(transfer["bytes"] / MIB / transfer["seconds"], 1),
            **transfer,
        }
    }


def nginx(base_url: str, large_path: str, small_path: str, clients: int, duration: float) -> dict:
    """nginx over loopback: large GET in MiB/s, small GET with our client (and wrk)."""
    large = nginx_large(base_url, large_path)
    small = run_load(base_url, {"kind": "get", "paths": [small_path]}, clients, duration=duration)
    return {
        **large,
        "small_get": small.summary(),
        "small_get_wrk": wrk_rate(base_url + small_path, clients, duration),
    }


def flask_body_read(base_url: str, source: str) -> dict:
    """The large file PUT to the minimal app, which reads and drops it: MiB/s."""
    transfer = large_put(base_url, "/sink", source)
    return {"mib_per_s": round(transfer["bytes"] / MIB / transfer["seconds"], 1), **transfer}


def flask_file_put(base_url: str, source: str) -> dict:
    """The large file PUT to the minimal app, which writes it to a file and fsyncs it: MiB/s.

    The fair ceiling of a large PUT for a Python WSGI service: gunicorn's
    body reader, a write loop and one fsync, without digests or a database.
    """
    transfer = large_put(base_url, "/file", source)
    return {"mib_per_s": round(transfer["bytes"] / MIB / transfer["seconds"], 1), **transfer}


def _md5_of(size: int) -> dict:
    import hashlib
    import os
    import time

    block = os.urandom(MIB)
    digest = hashlib.md5()
    began = time.monotonic()
    for _ in range(max(1, size // MIB)):
        digest.update(block)
    seconds = time.monotonic() - began
    return {"bytes": max(1, size // MIB) * MIB, "seconds": seconds}


def md5_stream(size: int) -> dict:
    """MD5 of ``size`` bytes from memory on one core, MiB/s: MD5 cannot be split over
    cores, so no PUT that returns it can receive one body faster than this."""
    figures = in_child(_md5_of, size)
    return {"mib_per_s": round(figures["bytes"] / MIB / figures["seconds"], 1), **figures}


def flask_get_rate(base_url: str, clients: int, duration: float) -> dict:
    """One sample of the minimal Flask app's 1 KiB GET rate (our client only)."""
    plan = {"kind": "get", "paths": ["/small"]}
    return run_load(base_url, plan, clients, duration=duration).summary()


def flask_small(base_url: str, clients: int, duration: float) -> dict:
    """The minimal Flask app's 1 KiB GET under the service's gunicorn settings."""
    return {
        "small_get": flask_get_rate(base_url, clients, duration),
        "small_get_wrk": wrk_rate(base_url + "/small", clients, duration),
    }


def postgres(dsn: str, clients: int, duration: float) -> dict:
    """Committed single-row INSERT + SELECT by key, ``clients`` connections at once."""
    concurrent = pg_roundtrips(dsn, clients, duration)
    single = pg_roundtrips(dsn, 1, max(1.0, duration / 2))
    return {"concurrent": concurrent.summary(), "single_client": single.summary()}


def _timed_loop(operation, duration: float, barrier) -> tuple[float, float, LoadResult]:
    """Once ``barrier`` lets every process go, ``operation(serial)`` again and again for
    ``duration`` seconds, each call timed; (start, end, result)."""
    result = LoadResult()
    barrier.wait()
    start = time.monotonic()
    deadline = start + duration
    serial = 0
    while time.monotonic() < deadline:
        began = time.monotonic()
        operation(serial)
        result.latencies.append(time.monotonic() - began)
        result.ops += 1
        serial += 1
    return start, time.monotonic(), result


def _pg_client(index, dsn, duration, barrier, queue) -> None:
    import psycopg2

    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    cursor = connection.cursor()

    def round_trip(serial: int) -> None:
        cursor.execute(
            "INSERT INTO bench_roundtrip (client, serial, payload) VALUES (%s, %s, %s)"
            " RETURNING id",
            (index, serial, "x" * 64),
        )
        (row_id,) = cursor.fetchone()
        cursor.execute("SELECT payload FROM bench_roundtrip WHERE id = %s", (row_id,))
        cursor.fetchone()

    start, end, result = _timed_loop(round_trip, duration, barrier)
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
    parts = run_processes(_pg_client, clients, dsn, duration)
    return combine(parts, parts)


def _fsync_writer(index, directory, duration, barrier, queue) -> None:
    body = b"f" * 1024
    target = os.path.join(directory, f"w{index}")
    os.makedirs(target, exist_ok=True)
    directory_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)

    def durable_file(serial: int) -> None:
        temp = os.path.join(target, f"{serial}.part")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        os.write(fd, body)
        os.fsync(fd)
        os.close(fd)
        os.rename(temp, os.path.join(target, str(serial)))
        os.fsync(directory_fd)

    start, end, result = _timed_loop(durable_file, duration, barrier)
    os.close(directory_fd)
    queue.put((index, start, end, result))


def small_file_fsyncs(directory: str, clients: int, duration: float) -> LoadResult:
    """Durable 1 KiB file creations (write, fsync, rename, directory fsync), as a PUT does."""
    parts = run_processes(_fsync_writer, clients, directory, duration)
    return combine(parts, parts)

"""Hash-ahead for filesystem upload jobs: digests computed while chunks arrive.

MD5 cannot be split: the digest of an object is one sequential pass over its
bytes, and hashing 1 GiB at finalization would take longer than receiving it.
So, while a job's chunks arrive, one background thread (in whichever worker
process first wins the job's ``KEY.hasher`` lock) hashes the contiguous prefix
of chunks already written, and writes its result to ``KEY.digest`` when it
reaches the end. Finalization, which holds the job file's exclusive lock (no
chunk write in flight), uses that result only when it is provably about the
bytes now in the file; otherwise it hashes the file itself. Nothing here is
trusted blindly: the result is a hint checked against the job's chunk log.

The chunk log ``KEY.log`` is appended to by every chunk write (atomic 9-byte
``O_APPEND`` records): ``S`` + index before the bytes are written, ``D`` +
index after they are durable. The log is not fsynced: a killed process loses
no ``write()``, and results are only used within the kernel boot that wrote
them. The hasher records, for every chunk, the log
offset of the ``D`` record after which it read the chunk; the result is valid
iff, for every chunk, that record is the last record of that chunk in the log
(no rewrite started afterwards).

Once a chunk is hashed (it was durable before it was read: its ``D``
record), the hasher drops its pages from the page cache
(``POSIX_FADV_DONTNEED``; clean pages go at once), so that the chunks still
to come are written into pages just freed rather than into memory the
kernel has not used for a while. On a virtual machine whose idle memory is
handed back to the host (virtio-balloon free page reporting, as on this
project's benchmark machine), touching such memory again costs a fault in
the host per page: writing a 1 GiB job into freed pages was 5-10x faster
there (docs/benchmark.md, "The dd ceiling"). It also keeps a large upload
from pushing hot objects out of the cache; the price is that a GET of a
job's object right after finalization reads from the disk.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from .base import Digests

logger = logging.getLogger(__name__)

RECORD = struct.Struct("<cQ")
STARTED = b"S"
DONE = b"D"
READ_BLOCK = 4 * 1024 * 1024
IDLE_SECS = 30.0  # a hasher with nothing to do for this long gives up its job
WAIT_SECS = 45.0  # finalization waits at most this long for a running hasher

_running: dict[str, threading.Thread] = {}
_running_lock = threading.Lock()


def drop_cached(fd: int, offset: int, length: int) -> None:
    """Let the kernel free the cached pages of a durable range (a hint; nothing
    is lost: dirty pages, e.g. of a rewrite that began meanwhile, stay)."""
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass


def log_path(job_path: Path) -> Path:
    return job_path.with_name(job_path.name + ".log")


def digest_path(job_path: Path) -> Path:
    return job_path.with_name(job_path.name + ".digest")


def hasher_path(job_path: Path) -> Path:
    return job_path.with_name(job_path.name + ".hasher")


def side_files(job_path: Path) -> list[Path]:
    return [
        log_path(job_path),
        digest_path(job_path),
        job_path.with_name(job_path.name + ".digest.tmp"),
        hasher_path(job_path),
    ]


def append_record(job_path: Path, kind: bytes, index: int) -> None:
    """Append one record. Not fsynced: a killed process loses no write(), and a
    result is only trusted within the boot that wrote it (see :func:`boot_id`)."""
    fd = os.open(log_path(job_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, RECORD.pack(kind, index))
    finally:
        os.close(fd)


def boot_id() -> Optional[str]:
    """This boot of the kernel: after a power loss the log may have lost records."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def read_records(job_path: Path, start: int = 0) -> tuple[list[tuple[int, bytes, int]], int]:
    """``[(offset, kind, index)]`` of whole records from ``start``; and the next offset."""
    try:
        with open(log_path(job_path), "rb") as log:
            log.seek(start)
            data = log.read()
    except FileNotFoundError:
        return [], start
    whole = len(data) - len(data) % RECORD.size
    records = []
    for position in range(0, whole, RECORD.size):
        kind, index = RECORD.unpack_from(data, position)
        records.append((start + position, kind, index))
    return records, start + whole


def start_hasher(job_path: Path, size: int, chunk_length: int, drop: bool = True) -> None:
    """Make sure some process hashes this job ahead (cheap when one already does);
    ``drop``: let the page cache free each chunk once hashed."""
    key = job_path.name
    with _running_lock:
        thread = _running.get(key)
        if thread is not None and thread.is_alive():
            return
        try:
            lock_fd = os.open(hasher_path(job_path), os.O_WRONLY | os.O_CREAT, 0o640)
        except OSError:
            return
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another process hashes this job
            os.close(lock_fd)
            return
        thread = threading.Thread(
            target=_hash_ahead,
            args=(job_path, size, chunk_length, lock_fd, drop),
            name=f"hash-ahead-{key}",
            daemon=True,
        )
        _running[key] = thread
        thread.start()


def _hash_ahead(job_path: Path, size: int, chunk_length: int, lock_fd: int, drop: bool) -> None:
    try:
        _hash_ahead_locked(job_path, size, chunk_length, drop)
    except FileNotFoundError:
        pass  # the job was cancelled or finalized
    except Exception:  # only a hint is lost: finalization hashes the file itself
        logger.exception("hash-ahead of upload job %s failed", job_path.name)
    finally:
        os.close(lock_fd)  # releases the lock
        with _running_lock:
            _running.pop(job_path.name, None)


def _hash_ahead_locked(job_path: Path, size: int, chunk_length: int, drop: bool) -> None:
    count = -(-size // chunk_length)
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    latest_done: dict[int, int] = {}
    used: list[int] = []
    log_offset = 0
    idle_since = time.monotonic()
    fd = os.open(job_path, os.O_RDONLY)
    # MD5 on a helper thread, SHA-256 on this one: one pass at the slower's speed
    helper = ThreadPoolExecutor(max_workers=1)
    pending = None
    try:
        while len(used) < count:
            records, log_offset = read_records(job_path, log_offset)
            for offset, kind, index in records:
                if kind == DONE:
                    latest_done[index] = offset
                else:
                    latest_done.pop(index, None)  # being rewritten: wait for its D
            progressed = False
            while len(used) < count and len(used) in latest_done:
                index = len(used)
                start = index * chunk_length
                end = min(size, start + chunk_length)
                while start < end:
                    block = os.pread(fd, min(READ_BLOCK, end - start), start)
                    if not block:
                        return
                    if pending is not None:
                        pending.result()
                    pending = helper.submit(md5.update, block)
                    sha256.update(block)
                    start += len(block)
                used.append(latest_done[index])
                progressed = True
                if drop:
                    drop_cached(fd, index * chunk_length, end - index * chunk_length)
            if progressed:
                idle_since = time.monotonic()
                continue
            if time.monotonic() - idle_since > IDLE_SECS or not job_path.exists():
                return
            time.sleep(0.02)
        if pending is not None:
            pending.result()
    finally:
        helper.shutdown(wait=True)
        os.close(fd)
    result = {
        "boot": boot_id(),
        "size": size,
        "md5": base64.b64encode(md5.digest()).decode(),
        "sha256": base64.b64encode(sha256.digest()).decode(),
        "used": used,
    }
    temp = job_path.with_name(job_path.name + ".digest.tmp")  # one hasher: one writer
    temp.write_text(json.dumps(result))
    os.rename(temp, digest_path(job_path))


def _hasher_running(job_path: Path) -> bool:
    try:
        fd = os.open(hasher_path(job_path), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def interrupted_chunks(job_path: Path) -> list[int]:
    """Chunks whose last logged write started but never completed (with no write
    in flight: the job file's exclusive lock held)."""
    last: dict[int, bytes] = {}
    for _, kind, index in read_records(job_path)[0]:
        last[index] = kind
    return sorted(index for index, kind in last.items() if kind == STARTED)


def precomputed_digests(job_path: Path, size: int, chunk_length: int) -> Optional[Digests]:
    """The hasher's digests if they describe the file as it is now, else None.

    Call with the job file's exclusive lock held (no chunk write in flight).
    """
    result_file = digest_path(job_path)
    deadline = time.monotonic() + WAIT_SECS
    while not result_file.exists():
        if time.monotonic() > deadline or not _hasher_running(job_path):
            if not result_file.exists():
                return None
            break
        time.sleep(0.01)
    try:
        result = json.loads(result_file.read_text())
    except (OSError, ValueError):
        return None
    count = -(-size // chunk_length)
    used = result.get("used")
    if result.get("size") != size or not isinstance(used, list) or len(used) != count:
        return None
    if result.get("boot") is None or result.get("boot") != boot_id():
        return None  # written before a reboot: the log may have lost records
    last: dict[int, tuple[bytes, int]] = {}
    for offset, kind, index in read_records(job_path)[0]:
        last[index] = (kind, offset)
    for index, offset in enumerate(used):
        if last.get(index) != (DONE, offset):
            return None  # rewritten after it was hashed
    return _FixedDigests(result["md5"], result["sha256"], size)


class _FixedDigests(Digests):
    """Digests known as base64 strings."""

    def __init__(self, md5_b64: str, sha256_b64: str, size: int) -> None:
        super().__init__()
        self.size = size
        self._md5_b64 = md5_b64
        self._sha256_b64 = sha256_b64

    @property
    def md5_b64(self) -> str:
        return self._md5_b64

    @property
    def sha256_b64(self) -> str:
        return self._sha256_b64

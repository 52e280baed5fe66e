"""``get``: one object (or version) to a file, in parallel ranged parts, resumable.

The bytes go to ``.NAME.hatrac-part`` beside the destination, made at its
full size first (parts land anywhere in it), with a ``.json`` sidecar
naming the version and how many bytes of each part are there. Objects of
at least two parts are fetched by ``streams`` threads, each asking for one
part at a time with ``Range`` over a keep-alive connection and writing it
with ``os.pwrite``; smaller ones, and ``--streams 1``, take one request.

While parts arrive, a hashing thread follows the contiguous prefix of the
file already written (re-read from the page cache into a small buffer:
hashing through an ``mmap`` of the file measured slower, 0.96 s of CPU per
GiB against 0.75), so the digest the
server announced (SHA-256 when it gives one: faster than MD5 here) is done
almost as soon as the last byte lands. A keeper thread records the
progress in the sidecar a few times a second. An interrupted get (a
dropped connection is retried in place; a killed client is run again)
fetches only what the sidecar does not list; whatever the sidecar says,
the digest is checked over the whole file at the end. Only when the
digest matches is the file renamed to its final name.

Durability is a choice, as with curl, ``aws s3 cp``, rclone and mc: by
default nothing is synced (the file is in the page cache when ``get``
returns; only a power loss or kernel crash before the kernel writes it out
can leave a file under its final name incomplete). With ``fsync`` the
keeper asks the kernel to start writing the file out while it arrives
(``sync_file_range``, which does not wait: an ``fdatasync`` while writing
stalled the writes), one ``fdatasync`` follows the last byte, and the
directory is synced after the rename.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Callable, Optional

import requests
import urllib3

from .hashing import b64
from .http import Connection, HatracError
from .locations import RemotePath

MiB = 1024 * 1024
PART_SUFFIX = ".hatrac-part"
PART_SIZE = 32 * MiB  # a ranged request per part: large enough to be cheap, small to resume
READ_BLOCK = 1024 * 1024
HASH_BLOCK = 4 * MiB
KEEP_EVERY = 0.2  # seconds between records of the progress in the sidecar
FORMAT = 2  # of the sidecar; another format (an older client's) starts over
# what a body read raises when the connection drops (http.client: IncompleteRead)
BROKEN = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
    ValueError,
)


def verify(digest: Any, expected: Optional[tuple[str, str]], target: RemotePath) -> None:
    """Refuse the bytes unless ``digest`` (a hashlib object, None when there is nothing to
    check) matches ``expected``, the (algorithm, base64 digest) the server announced."""
    if digest is not None and b64(digest.digest()) != expected[1]:
        raise HatracError(
            f"the bytes received for {target.display()} do not match its {expected[0]} "
            f"({expected[1]}); nothing was kept"
        )


def part_paths(dest: str) -> tuple[str, str]:
    """The partial file of ``dest`` and its sidecar."""
    directory, name = os.path.split(os.path.abspath(dest))
    partial = os.path.join(directory, "." + name + PART_SUFFIX)
    return partial, partial + ".json"


class Download:
    """One get into a partial file: parts, hashing, keeping, and the final rename."""

    def __init__(
        self,
        conn: Connection,
        source: str,
        size: int,
        dest: str,
        expected: Optional[tuple[str, str]],
        streams: int,
        got: Callable[..., None],
        part_size: int = PART_SIZE,
        fsync: bool = False,
    ) -> None:
        self.conn = conn
        self.fsync = fsync
        self.source = source
        self.size = size
        self.dest = dest
        self.expected = expected
        self.got = got
        self.partial, self.sidecar = part_paths(dest)
        parallel = max(1, streams) > 1 and size >= 2 * part_size
        self.part = part_size if parallel else max(size, 1)
        self.streams = max(1, streams) if parallel else 1
        self.count = max(1, -(-size // self.part))
        self.identity = {
            "format": FORMAT,
            "source": source,
            "size": size,
            "digest": list(expected) if expected else None,
            "part": self.part,
        }
        self.received = [0] * self.count  # bytes of each part in the file, from its start
        self.lock = threading.Condition()
        self.finished = False
        self.failed = threading.Event()

    def part_length(self, index: int) -> int:
        return min(self.part, self.size - index * self.part)

    # -- the sidecar --------------------------------------------------------------------
    def _load(self) -> int:
        try:
            with open(self.sidecar, encoding="utf-8") as stream:
                found = json.load(stream)
            if {k: v for k, v in found.items() if k != "received"} != self.identity:
                return 0
            received = found["received"]
            if len(received) != self.count or os.path.getsize(self.partial) != self.size:
                return 0
            self.received = [
                max(0, min(int(n), self.part_length(i))) for i, n in enumerate(received)
            ]
        except (OSError, ValueError, KeyError, TypeError):
            self.received = [0] * self.count
        return sum(self.received)

    def _save(self, received: list) -> None:
        temporary = self.sidecar + ".new"
        with open(temporary, "w", encoding="utf-8") as stream:
            json.dump({**self.identity, "received": received}, stream)
        os.replace(temporary, self.sidecar)

    # -- the work -----------------------------------------------------------------------
    def run(self, target: RemotePath) -> int:
        already = self._load()
        if already == 0:
            self._save(self.received)
        self.fd = os.open(self.partial, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(self.fd).st_size != self.size:
                os.ftruncate(self.fd, self.size)
            self.got(already, True)
            digest = hashlib.new(self.expected[0]) if self.expected else None
            self._transfer(digest)
            if self.fsync:
                os.fdatasync(self.fd)  # once, at the end: a sync during the writes stalls them
        finally:
            os.close(self.fd)
        try:
            verify(digest, self.expected, target)
        except HatracError:
            os.unlink(self.partial)
            os.unlink(self.sidecar)
            raise
        os.replace(self.partial, self.dest)
        os.unlink(self.sidecar)
        if self.fsync:
            sync_directory(os.path.dirname(os.path.abspath(self.dest)))
        return already

    def _transfer(self, digest: Optional[hashlib._Hash]) -> None:
        hasher = threading.Thread(target=self._hash, args=(digest,), daemon=True)
        keeper = threading.Thread(target=self._keep, daemon=True)
        hasher.start()
        keeper.start()
        missing = [i for i in range(self.count) if self.received[i] < self.part_length(i)]
        try:
            if self.size == 0:
                fetch_range(self.conn, self.source, 0, 0, 0, self._writer(0), self.got)
            elif self.streams == 1:
                for index in missing:
                    self._fetch_part(index)
            else:
                self._parallel(missing)
        except BaseException:
            self.failed.set()
            raise
        finally:
            with self.lock:
                self.finished = True
                self.lock.notify_all()
            keeper.join()
            hasher.join()
        if self.hash_error is not None:
            raise self.hash_error

    def _parallel(self, missing: list) -> None:
        with ThreadPoolExecutor(self.streams, thread_name_prefix="hatrac-get") as pool:
            futures = [pool.submit(self._fetch_part, index) for index in missing]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    self.failed.set()
                    for other in futures:
                        other.cancel()
                    raise future.exception()

    def _writer(self, index: int) -> Callable[[memoryview, int], None]:
        def write(block: memoryview, offset: int) -> None:
            block0 = block
            while block:
                count = os.pwrite(self.fd, block, offset)
                block, offset = block[count:], offset + count
            done = offset - index * self.part
            self.received[index] = done  # one list item: atomic under the GIL
            if done == self.part_length(index) or done % HASH_BLOCK < len(block0):
                with self.lock:  # wake the hasher about every HASH_BLOCK bytes
                    self.lock.notify_all()

        return write

    def _fetch_part(self, index: int) -> None:
        if self.failed.is_set():
            return
        start = index * self.part + self.received[index]
        end = index * self.part + self.part_length(index)
        fetch_range(
            self.conn,
            self.source,
            start,
            end,
            self.size,
            self._writer(index),
            self.got,
            self.failed,
        )

    def _contiguous(self) -> int:
        """How many bytes from the file's start are written (parts fill from their start)."""
        total = 0
        for index, count in enumerate(self.received):
            total += count
            if count < self.part_length(index):
                break
        return total

    hash_error: Optional[BaseException] = None

    def _hash(self, digest: Optional[hashlib._Hash]) -> None:
        if digest is None:
            return
        buffer = bytearray(HASH_BLOCK)
        view = memoryview(buffer)
        hashed = 0
        try:
            while hashed < self.size:
                with self.lock:
                    while (ready := self._contiguous()) <= hashed and not self.finished:
                        self.lock.wait()
                    if ready <= hashed:
                        return  # stopped before the end: a failure, nothing to check
                while hashed < ready:
                    count = os.preadv(self.fd, [view[: min(HASH_BLOCK, ready - hashed)]], hashed)
                    if count <= 0:
                        raise OSError(f"the partial file {self.partial} became shorter")
                    digest.update(view[:count])
                    hashed += count
        except BaseException as error:  # reported by _transfer
            self.hash_error = error
            self.failed.set()

    def _keep(self) -> None:
        """Record in the sidecar how far each part is, every :data:`KEEP_EVERY`, until
        the end, and start the write-out of what is written (the sidecar is not
        synced: a killed client loses no write; after a crash, the digest check
        refuses bytes that did not reach the disk)."""
        saved = None
        while True:
            with self.lock:
                self.lock.wait_for(lambda: self.finished, timeout=KEEP_EVERY)
                finished = self.finished
                received = list(self.received)
            if received != saved:
                try:
                    if self.fsync and not finished:
                        start_writeback(self.fd, self.size)
                    self._save(received)
                    saved = received
                except OSError:
                    pass  # the transfer reports its own failures; this is only for resuming
            if finished:
                return


def sync_directory(path: str) -> None:
    """Make a rename in ``path`` durable (``fsync`` of the directory)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_sync_file_range = None


def start_writeback(fd: int, size: int) -> None:
    """Ask the kernel to start writing the file's dirty pages out now, without
    waiting (Linux ``sync_file_range``), so the final sync has less left."""
    global _sync_file_range
    if _sync_file_range is None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            function = libc.sync_file_range
            function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
            _sync_file_range = function
        except (OSError, AttributeError):
            _sync_file_range = False
    if _sync_file_range:
        _sync_file_range(fd, 0, size, 2)  # SYNC_FILE_RANGE_WRITE


def fetch_range(
    conn: Connection,
    source: str,
    start: int,
    end: int,
    size: int,
    deliver: Callable[[memoryview, int], None],
    got: Callable,
    stop: Optional[threading.Event] = None,
) -> None:
    """Give bytes ``[start, end)`` of ``source`` to ``deliver(block, offset)`` in order,
    asking again from where it broke off when a connection drops mid-body."""
    buffer = bytearray(READ_BLOCK)
    view = memoryview(buffer)
    offset = start
    attempts = 0
    while offset < end or (end == 0 and attempts == 0):
        headers = {"Accept": "*/*", "Accept-Encoding": "identity"}
        if offset or end < size:
            headers["Range"] = f"bytes={offset}-{end - 1}"
        response = conn.request("GET", source, headers=headers, ok=(200, 206), stream=True)
        if response.status_code == 200 and "Range" in headers:
            response.close()
            raise HatracError(
                f"the server ignored Range on {source}; cannot resume or fetch in parallel "
                "(try --streams 1)"
            )
        if response.status_code == 206 and not _range_starts_at(response, offset):
            response.close()
            raise HatracError(
                f"the server answered Range bytes={offset}- on {source} with "
                f"{response.headers.get('Content-Range')!r}"
            )
        reader = _body_reader(response)
        broken = None
        try:
            while offset < end:
                if stop is not None and stop.is_set():
                    return
                try:
                    count = reader(view[: min(READ_BLOCK, end - offset)])
                except BROKEN as error:
                    broken = error
                    break
                if not count:
                    break
                deliver(view[:count], offset)  # a local failure (a full disk) is not retried
                offset += count
                got(count)
            if broken is None and offset == end:
                if end == size and _more(reader, view):
                    raise HatracError(f"the server sent more than the {size} bytes of {source}")
                _release(response)
        finally:
            response.close()
        if end == 0:
            break
        if offset < end:
            attempts += 1
            if attempts > conn.retries:
                what = f"broke off: {broken}" if broken else f"ended at {offset} of {size} bytes"
                raise HatracError(f"the download of {source} {what}")
            time.sleep(min(conn.retry_wait * attempts, conn.max_retry_wait))


def _range_starts_at(response: requests.Response, offset: int) -> bool:
    """Whether a 206's ``Content-Range: bytes A-B/N`` starts at ``offset``."""
    value = response.headers.get("Content-Range", "")
    unit, _, rest = value.partition(" ")
    start = rest.split("-", 1)[0]
    return unit.lower() == "bytes" and start.isdigit() and int(start) == offset


def _more(reader: Callable[[memoryview], int], view: memoryview) -> bool:
    try:
        return bool(reader(view[:1]))
    except BROKEN:
        return False


def _release(response: requests.Response) -> None:
    """Give a fully read connection back to the pool (read past urllib3, it does not
    know the body is done, and closing the response would close the socket)."""
    try:
        response.raw.release_conn()
    except Exception:  # noqa: BLE001  (only an optimization)
        pass


def _body_reader(response: requests.Response) -> Callable[[memoryview], int]:
    """``readinto`` on the response body without urllib3's extra copy when possible
    (the raw ``http.client`` response, safe here as the body is not encoded)."""
    raw = response.raw
    inner = getattr(raw, "_fp", None)
    encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
    if inner is not None and hasattr(inner, "readinto") and not encoded:
        return inner.readinto
    if not encoded:
        return raw.readinto

    decoded = response.iter_content(READ_BLOCK)
    pending = [b""]

    def read(view: memoryview) -> int:
        while not pending[0]:
            pending[0] = next(decoded, None)
            if pending[0] is None:
                pending[0] = b""
                return 0
        count = min(len(view), len(pending[0]))
        view[:count] = pending[0][:count]
        pending[0] = pending[0][count:]
        return count

    return read

"""Digests of local files, and file slices streamed as request bodies.

Digests travel base64-encoded, as the protocol wants. A :class:`FileSlice`
is an iterable with a length, so ``requests`` sends it with a
``Content-Length`` and streams it in large blocks (``os.pread``: slices of
one file are read by several threads at once without sharing a position).
A :class:`BufferBody` does the same for a chunk already read into memory
(an upload job's chunk: read once and sent from that buffer, its digest
computed beforehand by :func:`file_sha256_and_chunk_digests`, on the other
CPUs while the whole file's SHA-256 is computed, or else just before).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from typing import Callable, Iterator, Optional

BLOCK = 1024 * 1024
PREPASS_BLOCK = 4 * BLOCK


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def hex_to_b64(value: str) -> str:
    """Servers answer base64; a few answer hex: normalize to base64."""
    value = value.strip()
    if len(value) in (32, 64) and all(c in "0123456789abcdefABCDEF" for c in value):
        return b64(bytes.fromhex(value))
    return value


def file_digests(path: str, md5: bool = True, progress: Optional[Callable] = None) -> dict:
    """``{"sha256": b64, "md5": b64}`` of a whole file, in one pass."""
    sha = hashlib.sha256()
    md = hashlib.md5() if md5 else None
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(BLOCK), b""):
            sha.update(block)
            if md is not None:
                md.update(block)
            if progress:
                progress(len(block))
    found = {"sha256": b64(sha.digest())}
    if md is not None:
        found["md5"] = b64(md.digest())
    return found


def file_sha256(path: str) -> str:
    """The SHA-256 (base64) of a whole file, read into one reused buffer."""
    whole = hashlib.sha256()
    view = memoryview(bytearray(PREPASS_BLOCK))
    fd = os.open(path, os.O_RDONLY)
    try:
        while count := os.readv(fd, [view]):
            whole.update(view[:count])
    finally:
        os.close(fd)
    return b64(whole.digest())


SEGMENT = 4 * BLOCK  # a read of a chunk hasher


def file_sha256_and_chunk_digests(
    path: str, chunk: int, name: Optional[str], lanes: Optional[int] = None, finish: bool = False
) -> tuple[str, Optional[list[Optional[str]]]]:
    """The whole file's SHA-256 (base64) and, meanwhile, as many ``chunk``
    digests ``name`` as the other CPUs can make (None for the others).

    The calling thread reads the file in order for the SHA-256 (as
    :func:`file_sha256`); ``lanes`` threads (the other CPUs; hashlib releases
    the GIL on large buffers) take the chunks one at a time from the start,
    each read into a buffer of its own, and stop when the SHA-256 is done, so
    this takes no longer than the SHA-256 alone. A chunk left without its
    digest is hashed as it is sent. Only the digests are kept. ``finish``
    waits for every chunk's digest instead (a test's way to check them all).
    """
    if name is None:
        return file_sha256(path), None
    if lanes is None:
        lanes = max(1, min(4, (os.cpu_count() or 2) - 1))
    size = os.stat(path).st_size
    count = -(-size // chunk) if size else 0
    digests: list[Optional[str]] = [None] * count
    stop = threading.Event()
    claimed = iter(range(count))  # taken under ``lock``, one chunk at a time
    lock = threading.Lock()
    failures: list[BaseException] = []

    def lane() -> None:
        view = memoryview(bytearray(min(SEGMENT, chunk)))
        fd = os.open(path, os.O_RDONLY)
        try:
            while not stop.is_set():
                with lock:
                    number = next(claimed, None)
                if number is None:
                    return
                hasher = hashlib.new(name)
                offset, end = number * chunk, min(size, (number + 1) * chunk)
                while offset < end and not stop.is_set():
                    got = os.preadv(fd, [view[: min(len(view), end - offset)]], offset)
                    if got <= 0:
                        return  # the file became shorter: the send says so
                    hasher.update(view[:got])
                    offset += got
                if offset == end:
                    digests[number] = b64(hasher.digest())
        except BaseException as error:  # noqa: BLE001  (reported below)
            failures.append(error)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=lane, daemon=True) for _ in range(lanes)]
    for thread in threads:
        thread.start()
    try:
        whole = file_sha256(path)
        if finish:
            for thread in threads:
                thread.join()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    return whole, digests


def chunk_digest_of(view: memoryview, name: str) -> str:
    return b64(hashlib.new(name, view).digest())


class BufferBody:
    """Bytes already in memory as a streamed body of 1 MiB pieces with a length
    (no copy: memoryview slices), calling ``on_block`` as pieces go."""

    def __init__(self, view: memoryview, on_block: Optional[Callable] = None) -> None:
        self.view = view
        self.on_block = on_block

    def __len__(self) -> int:
        return len(self.view)

    def __iter__(self) -> Iterator[memoryview]:
        for start in range(0, len(self.view), BLOCK):
            piece = self.view[start : start + BLOCK]
            if self.on_block:
                self.on_block(len(piece))
            yield piece


class FileSlice:
    """``length`` bytes of an open file from ``offset``, as a streamed body."""

    def __init__(
        self, fd: int, offset: int, length: int, on_block: Optional[Callable] = None
    ) -> None:
        self.fd = fd
        self.offset = offset
        self.length = length
        self.on_block = on_block

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        position, end = self.offset, self.offset + self.length
        while position < end:
            block = os.pread(self.fd, min(BLOCK, end - position), position)
            if not block:
                raise OSError("the file became shorter while it was being sent")
            position += len(block)
            if self.on_block:
                self.on_block(len(block))
            yield block

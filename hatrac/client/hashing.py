"""Digests of local files, and file slices streamed as request bodies.

Digests travel base64-encoded, as the protocol wants. A :class:`FileSlice`
is an iterable with a length, so ``requests`` sends it with a
``Content-Length`` and streams it in large blocks (``os.pread``: slices of
one file are read by several threads at once without sharing a position).
A :class:`BufferBody` does the same for a chunk already read into memory
(an upload job's chunk: read once and sent from that buffer, its digest
computed beforehand by :func:`file_sha256_and_chunk_digests` in the same
pass as the whole file's SHA-256).
"""

from __future__ import annotations

import base64
import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
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


SEGMENT = 4 * BLOCK  # a read of the pre-pass; never straddles two chunks


def file_sha256_and_chunk_digests(
    path: str, chunk: int, name: Optional[str], lanes: Optional[int] = None
) -> tuple[str, Optional[list[str]]]:
    """The whole file's SHA-256 and each ``chunk``'s digest ``name`` (base64; None
    when ``name`` is None), in one read of the file.

    The main thread reads segments into a ring of reused buffers; one thread
    feeds each segment to the whole SHA-256 in order, and ``lanes`` threads
    hash the chunks (chunk ``k`` on lane ``k % lanes``, so its segments stay in
    order). hashlib releases the GIL on large buffers, so the hashes run on
    all CPUs at once; only the digests (16 or 32 bytes a chunk) are kept.
    """
    if name is None:
        return file_sha256(path), None
    lanes = max(1, min(4, os.cpu_count() or 1) if lanes is None else lanes)
    segment = min(SEGMENT, chunk)
    per_chunk = -(-chunk // segment)
    ring = [bytearray(segment) for _ in range(min(lanes * per_chunk + 2, 32))]
    pending: list[list[Future]] = [[] for _ in ring]
    whole = hashlib.sha256()
    digests: list[str] = []
    fd = os.open(path, os.O_RDONLY)
    sha_pool = ThreadPoolExecutor(1, thread_name_prefix="hatrac-sha256")
    chunk_pools = [ThreadPoolExecutor(1, thread_name_prefix=f"hatrac-{name}") for _ in range(lanes)]
    finished: list[Future] = []
    try:
        size = os.fstat(fd).st_size
        offset, turn, hasher = 0, 0, None
        while offset < size:
            slot = turn % len(ring)
            for future in pending[slot]:
                future.result()  # the buffer is free again (and no hash failed)
            number = offset // chunk
            end = min(size, (number + 1) * chunk)
            view = memoryview(ring[slot])[: min(segment, end - offset)]
            if os.preadv(fd, [view], offset) != len(view):
                raise OSError(f"{path} became shorter while it was being read")
            lane = chunk_pools[number % lanes]
            if offset == number * chunk:
                hasher = hashlib.new(name)
                digests.append("")
            pending[slot] = [sha_pool.submit(whole.update, view), lane.submit(hasher.update, view)]
            offset += len(view)
            turn += 1
            if offset == end:

                def done(number: int = number, hasher=hasher) -> None:
                    digests[number] = b64(hasher.digest())

                finished.append(lane.submit(done))
        for future in [*(f for group in pending for f in group), *finished]:
            future.result()
    finally:
        sha_pool.shutdown(wait=True)
        for pool in chunk_pools:
            pool.shutdown(wait=True)
        os.close(fd)
    return b64(whole.digest()), digests


def chunk_digest_of(view: memoryview, name: str) -> str:
    return b64(hashlib.new(name, view).digest())


class BufferBody:
    """Bytes already in memory as a streamed body of 1 MiB pieces with a length
    (no copy: memoryview slices), calling ``on_block`` as pieces go."""

    def __init__(self, view: memoryview, on_block: Optional[Callable] = None):
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

    def __init__(self, fd: int, offset: int, length: int, on_block: Optional[Callable] = None):
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

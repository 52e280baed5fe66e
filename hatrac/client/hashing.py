"""Digests of local files, and file slices streamed as request bodies.

Digests travel base64-encoded, as the protocol wants. A :class:`FileSlice`
is an iterable with a length, so ``requests`` sends it with a
``Content-Length`` and streams it in large blocks (``os.pread``: slices of
one file are read by several threads at once without sharing a position).
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import BinaryIO, Callable, Iterator, Optional

BLOCK = 1024 * 1024


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


def slice_md5(fd: int, offset: int, length: int) -> str:
    digest = hashlib.md5()
    end = offset + length
    while offset < end:
        block = os.pread(fd, min(BLOCK, end - offset), offset)
        if not block:
            raise OSError("the file became shorter while it was being sent")
        digest.update(block)
        offset += len(block)
    return b64(digest.digest())


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


def stream_into(blocks, out: BinaryIO, hashes: list, on_block: Optional[Callable] = None) -> int:
    """Write blocks to ``out``, updating every hash; the byte count."""
    total = 0
    for block in blocks:
        if not block:
            continue
        out.write(block)
        for digest in hashes:
            digest.update(block)
        total += len(block)
        if on_block:
            on_block(len(block))
    return total

"""Helpers shared by storage backends for chunked upload jobs.

:class:`JobGone` is what a backend raises when a job's storage has been
cancelled, finalized or is being finalized (the model answers 409/404), and
:func:`hash_file` computes both digests of an assembled file in one read,
MD5 and SHA-256 on two threads (hashlib releases the GIL on large blocks), so
finalization costs one pass at the speed of the slower hash.
:class:`JobsOfWrapped` gives a storage that wraps another (inline, overlay)
its upload jobs by handing them all to that one.
"""

from __future__ import annotations

import os
from typing import Iterable

from ...errors import Conflict
from .base import ChunkReceipt, Digests, Storage, StorageError

HASH_BLOCK = 4 * 1024 * 1024


class JobGone(Conflict):
    """The job's bytes can no longer be changed (cancelled, finalized, finalizing)."""


class ChunkInterrupted(Conflict):
    """A chunk's last write did not complete: finalization must wait for a resend."""


class JobsOfWrapped:
    """Upload jobs left wholly to one wrapped backend, ``job_backend``, and so is
    whether chunks are hashed on their way in (a mixin before :class:`Storage`)."""

    @property
    def job_backend(self) -> Storage:
        raise NotImplementedError

    @property
    def hashes_chunks(self) -> bool:
        return self.job_backend.hashes_chunks

    def create_job(self, job_key: str, size: int, chunk_length: int) -> str:
        return self.job_backend.create_job(job_key, size, chunk_length)

    def write_chunk(
        self, job_key: str, state: str, index: int, offset: int, blocks: Iterable[bytes]
    ) -> ChunkReceipt:
        return self.job_backend.write_chunk(job_key, state, index, offset, blocks)

    def finalize_job(
        self, job_key: str, state: str, size: int, chunks: list[ChunkReceipt], key: str
    ) -> Digests:
        return self.job_backend.finalize_job(job_key, state, size, chunks, key)

    def cancel_job(self, job_key: str, state: str) -> None:
        self.job_backend.cancel_job(job_key, state)


def hash_file(fd: int, size: int, block_size: int = HASH_BLOCK) -> Digests:
    """MD5 and SHA-256 of the first ``size`` bytes of an open file, in constant memory."""
    digests = Digests()
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, size, os.POSIX_FADV_SEQUENTIAL)
    offset = 0
    try:
        while offset < size:
            block = os.pread(fd, min(block_size, size - offset), offset)
            if not block:
                raise StorageError("The upload job's file ended early.")
            offset += len(block)
            digests.update(block)  # MD5 overlaps SHA-256 past the first blocks
    finally:
        digests.close()
    return digests

"""Helpers shared by storage backends for chunked upload jobs.

:class:`JobGone` is what a backend raises when a job's storage has been
cancelled, finalized or is being finalized (the model answers 409/404), and
:func:`hash_file` computes both digests of an assembled file in one read,
MD5 and SHA-256 on two threads (hashlib releases the GIL on large blocks), so
finalization costs one pass at the speed of the slower hash.
"""

from __future__ import annotations

import os

from ...errors import Conflict
from .base import Digests, StorageError

HASH_BLOCK = 4 * 1024 * 1024


class JobGone(Conflict):
    """The job's bytes can no longer be changed (cancelled, finalized, finalizing)."""


class ChunkInterrupted(Conflict):
    """A chunk's last write did not complete: finalization must wait for a resend."""


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

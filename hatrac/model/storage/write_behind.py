"""Writing a large body into its file on a helper thread while the next block arrives.

A large PUT's request thread used to receive a block, hash it (SHA-256;
MD5 runs on a helper, see :class:`~hatrac.model.storage.base.Digests`) and
write it, one after the other; the write into the page cache alone was
44% of its time (py-spy, docs/benchmark.md). :class:`WriteBehind` moves
the write of each block to a helper thread, one block in flight, so the
request thread receives and hashes the next block meanwhile (``os.write``
releases the GIL). Blocks are written in order, each whole, and a write's
error is raised to the caller by the next :meth:`~WriteBehind.write` or by
:meth:`~WriteBehind.finish`, which the caller runs before its fsync: no
byte is acknowledged that was not written and synced.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Optional

from .base import OVERLAP_HASHING_AFTER


class WriteBehind:
    """Write the blocks of one body to ``fd``, past the first few MiB on a helper thread.

    A block handed to the helper must not change afterwards: ``bytes``, or a
    body reader's fresh ``bytearray`` (as :class:`Digests` assumes too); any
    other block (a view of a reused buffer) is written before :meth:`write`
    returns. ``wrote(count)`` is called after each block is written (e.g.
    :meth:`EarlyWriteback.wrote`), in order, on whichever thread wrote it.
    """

    def __init__(
        self,
        fd: int,
        wrote: Optional[Callable[[int], None]] = None,
        start_after: int = OVERLAP_HASHING_AFTER,
    ):
        self.fd = fd
        self.size = 0
        self._wrote = wrote
        self._start_after = start_after
        self._helper: Optional[ThreadPoolExecutor] = None
        self._pending: Optional[Future] = None

    def _write(self, block) -> None:
        view = memoryview(block)
        while view:
            view = view[os.write(self.fd, view) :]
        if self._wrote is not None:
            self._wrote(len(block))

    def write(self, block) -> None:
        """Write ``block`` after the previous ones (perhaps later, on the helper)."""
        self.size += len(block)
        fresh = isinstance(block, (bytes, bytearray))
        if self._helper is None and (self.size <= self._start_after or not fresh):
            self._write(block)
            return
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # in order, and a failed write stops the body here
        if not fresh:
            self._write(block)
            return
        if self._helper is None:
            self._helper = ThreadPoolExecutor(1, thread_name_prefix="hatrac-write")
        self._pending = self._helper.submit(self._write, block)

    def finish(self) -> None:
        """Wait until every block is written; raise the error of a failed write."""
        try:
            if self._pending is not None:
                pending, self._pending = self._pending, None
                pending.result()
        finally:
            self.close()

    def close(self) -> None:
        """Wait for the helper and let it go (errors are :meth:`finish`'s to raise)."""
        if self._helper is not None:
            helper, self._helper = self._helper, None
            helper.shutdown(wait=True)
        self._pending = None

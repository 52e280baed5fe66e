"""Early writeback: a file being written is made durable as it grows, not only at the end.

:class:`EarlyWriteback` flushes a body being received every
:data:`WRITEBACK_STEP` bytes in a helper thread (and drops what is durable from
the page cache); :data:`start_writeback` asks the kernel to start writing a
range out without waiting (``sync_file_range``), which upload-job chunks use
every :data:`CHUNK_WRITEBACK_STEP` bytes. Both serve
:class:`~hatrac.model.storage.filesystem.FilesystemStorage`.
"""

from __future__ import annotations

import ctypes
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Optional

from . import hashahead

WRITEBACK_STEP = 32 * 1024 * 1024
# a chunk being written asks the kernel to start writing out every this many bytes
CHUNK_WRITEBACK_STEP = 2 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of dirty pages, do not wait


def _sync_file_range() -> Optional[Callable[[int, int, int], None]]:
    """``sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)`` from the C
    library (Linux), or None elsewhere. Python's os module does not offer it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int

    def start(fd: int, offset: int, length: int) -> None:
        function(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # a hint: errors come at fsync

    return start


start_writeback = _sync_file_range()


class EarlyWriteback:
    """Flush a file that is being written, in a helper thread, every few MiB.

    The kernel would otherwise start writing a large body out only at the
    final fsync, after the last byte arrived; flushing as it arrives overlaps
    the network and the disk, and leaves the final fsync little to do. Errors
    of a background flush are raised by :meth:`finish` (a failed flush may not
    be reported again by the final fsync).

    Once a flush has made a range durable, its pages are dropped from the page
    cache (``drop_behind``), as the upload jobs' hash-ahead drops the chunks it
    hashed (storage/hashahead.py): the rest of the body is then written into
    pages just freed instead of memory the kernel has not touched for a while,
    which on a virtual machine whose idle memory went back to the host costs a
    fault in the host per page, and a large upload does not push hot objects
    out of the cache. Only bodies larger than one step are ever dropped from,
    so a small or middling object stays cached for the GET that may follow.
    """

    def __init__(self, fd: int, step: int = WRITEBACK_STEP, drop_behind: bool = True) -> None:
        self.fd = fd
        self.step = step
        self.drop_behind = drop_behind
        self._unflushed = 0
        self._written = 0  # bytes written so far (the file's length)
        self._dropped = 0  # the prefix already dropped from the page cache
        self._helper: Optional[ThreadPoolExecutor] = None
        self._pending: Optional[Future] = None

    def wrote(self, count: int) -> None:
        self._unflushed += count
        self._written += count
        if self._unflushed < self.step:
            return
        if self._pending is not None:
            if not self._pending.done():
                return  # the disk is behind: let the running flush finish first
            self._pending.result()
        if self._helper is None:
            self._helper = ThreadPoolExecutor(1, thread_name_prefix="hatrac-writeback")
        self._unflushed = 0
        self._pending = self._helper.submit(self._flush, self._written)

    def _flush(self, upto: int) -> None:
        """Make everything written so far durable; drop the durable pages below ``upto``
        (every byte below it was written before this flush began)."""
        os.fdatasync(self.fd)
        if self.drop_behind and upto > self._dropped:
            hashahead.drop_cached(self.fd, self._dropped, upto - self._dropped)
            self._dropped = upto

    def finish(self) -> None:
        """Wait for any running flush (before the file is closed); raise its error."""
        if self._helper is not None:
            self._helper.shutdown(wait=True)
            self._helper = None
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

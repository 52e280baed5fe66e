"""How much of a file is in the page cache (Linux ``mincore``), for the benchmark's records.

A large GET served from cached pages and one that must read some from the
disk are different measurements; the large-object group records, before
its GETs, how much of the file they serve is cached (docs/benchmark.md,
"Large GET: the same file, several transfers").
"""

from __future__ import annotations

import ctypes
import mmap
import os
from typing import Optional

_PAGE = mmap.PAGESIZE


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    return libc


def cached_bytes(path: str) -> Optional[int]:
    """The bytes of ``path`` resident in the page cache, or None where that cannot be told."""
    try:
        libc = _libc()
        fd = os.open(path, os.O_RDONLY)
    except (OSError, AttributeError):
        return None
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0
        # a mapping touches no page; mincore only reports which are resident
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            return None
        try:
            pages = (size + _PAGE - 1) // _PAGE
            vector = (ctypes.c_ubyte * pages)()
            if libc.mincore(ctypes.c_void_p(address), size, vector) != 0:
                return None
            flags = bytes(vector)  # bit 0: resident (the kernel sets no other bit)
            resident = len(flags) - flags.count(0)
        finally:
            libc.munmap(ctypes.c_void_p(address), size)
    finally:
        os.close(fd)
    return min(size, resident * _PAGE)

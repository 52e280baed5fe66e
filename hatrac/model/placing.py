"""Stored bytes made durable under their key beside the transaction that records them.

A PUT whose body went to the storage backend must have its bytes durable
under their key (the filesystem's rename and directory fsync, S3's
completion) before its version row commits. Both wait on I/O, so the model
starts the first in one of these threads and records the version meanwhile;
the transaction waits for the bytes just before its COMMIT (see
``Hatrac.bind_version``'s ``before_commit``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

PLACING_THREADS = 8

_pools: dict[int, ThreadPoolExecutor] = {}


def placer() -> ThreadPoolExecutor:
    """This process's placing threads (made on first use: threads do not survive a fork)."""
    pid = os.getpid()
    pool = _pools.get(pid)
    if pool is None:
        pool = _pools.setdefault(
            pid, ThreadPoolExecutor(PLACING_THREADS, thread_name_prefix="hatrac-place")
        )
    return pool


def settle(wait: Optional[Callable[[], object]]) -> None:
    """Wait for a placement to end, whatever its outcome (the caller is failing already,
    and must not reclaim bytes that are still being placed)."""
    if wait is None:
        return
    try:
        wait()
    except BaseException:  # noqa: S110 - the caller's own error is the one reported
        pass

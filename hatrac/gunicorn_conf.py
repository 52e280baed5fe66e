"""Default gunicorn settings for Hatrac (``gunicorn --config python:hatrac.gunicorn_conf``).

Threads let one worker overlap slow clients and disk or database waits;
the long timeout leaves room for 100 MiB PUTs and job finalization on slow
links. Every value can be overridden on the command line.
"""

import ctypes
import ctypes.util
import gc
import multiprocessing
import os

workers = int(os.environ.get("HATRAC_WORKERS", min(4, multiprocessing.cpu_count() * 2)))
threads = int(os.environ.get("HATRAC_THREADS", 8))
worker_class = "gthread"
timeout = int(os.environ.get("HATRAC_TIMEOUT", 300))
graceful_timeout = 30
keepalive = 75
# request line and headers only; bodies are limited by max_request_payload_size
limit_request_line = 16384
limit_request_fields = 200
limit_request_field_size = 16384


def _return_large_blocks_to_the_system() -> None:
    """Serve blocks of 256 KiB and more (body buffers, hash blocks) from mmap.

    glibc otherwise raises its mmap threshold after the first large free and
    keeps later buffers in per-thread arenas, so a threaded worker's memory
    grows with the number of threads that once moved a large body. Set here,
    in the master, so that every forked worker inherits it (glibc only).
    """
    name = ctypes.util.find_library("c")
    if not name or os.environ.get("HATRAC_KEEP_MALLOC"):
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(-3, 256 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1024 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc: leave the allocator alone
        pass


_return_large_blocks_to_the_system()


def post_worker_init(worker):  # noqa: ARG001 - gunicorn's hook signature
    """Exempt everything loaded at start-up from the cyclic garbage collector's
    full passes, which a large listing (many small objects) would otherwise trigger."""
    gc.freeze()


def child_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """With PROMETHEUS_MULTIPROC_DIR set, drop a dead worker's live gauges (docs/operations.md)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

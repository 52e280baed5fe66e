"""Default gunicorn settings for Hatrac (``gunicorn --config python:hatrac.gunicorn_conf``).

Threads let one worker overlap disk or database waits (slow clients wait
in the worker's event loop, see :mod:`hatrac.gunicorn_worker`);
the long timeout leaves room for 100 MiB PUTs and job finalization on slow
links. gunicorn's own error log is written as JSON lines like Hatrac's
(:mod:`hatrac.logs`). With ``metrics_enabled``, several workers share a
private ``PROMETHEUS_MULTIPROC_DIR`` made at start-up (:mod:`hatrac.metrics_dir`).
Every value can be overridden on the command line.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging.handlers
import multiprocessing
import os
from typing import TYPE_CHECKING

from gunicorn.glogging import Logger

from hatrac import metrics_dir
from hatrac.logs import GunicornFormatter

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.config import Config
    from gunicorn.workers.base import Worker

workers = int(os.environ.get("HATRAC_WORKERS", min(4, multiprocessing.cpu_count() * 2)))
threads = int(os.environ.get("HATRAC_THREADS", 8))
# gthread that parks connections in its event loop until their request
# headers are complete (slow clients hold no thread), with header and body
# timeouts; see hatrac/gunicorn_worker.py and docs/operations.md
worker_class = "hatrac.gunicorn_worker.ParkingThreadWorker"
# forwarded headers are the application's business (trust_forwarded_headers),
# never gunicorn's: it would otherwise trust X-Forwarded-Proto from loopback
forwarded_allow_ips = ""
timeout = int(os.environ.get("HATRAC_TIMEOUT", 300))
graceful_timeout = 30
keepalive = 75
# request line and headers only; bodies are limited by max_request_payload_size
limit_request_line = 16384
limit_request_fields = 200
limit_request_field_size = 16384


def _share_malloc_arenas() -> None:
    """Cap glibc's malloc arenas at two per worker process.

    glibc gives busy threads arenas of their own and keeps freed body and
    hash buffers in each, so a threaded worker's memory would grow with the
    number of threads that once moved a large body. Set here, in the master,
    so that every forked worker inherits it; ``MALLOC_ARENA_MAX`` in the
    environment overrides it.
    """
    name = ctypes.util.find_library("c")
    if not name or os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        ctypes.CDLL(name).mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc: leave the allocator alone
        pass


_share_malloc_arenas()
# before any worker forks (and before --preload loads the app): see hatrac.metrics_dir
metrics_dir.prepare()


def on_exit(server: Arbiter) -> None:  # noqa: ARG001 - gunicorn's hook signature
    """Remove the private metrics directory made at start-up."""
    metrics_dir.cleanup()


class GunicornLogger(Logger):
    """gunicorn's logger with its error log (file or standard error) as JSON lines.

    Its access log (off unless ``--access-logfile`` is given) keeps gunicorn's
    format, since Hatrac writes its own; syslog handlers keep theirs.
    """

    def setup(self, cfg: Config) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            if not isinstance(handler, logging.handlers.SysLogHandler):
                handler.setFormatter(GunicornFormatter())


logger_class = GunicornLogger


def post_worker_init(worker: Worker) -> None:  # noqa: ARG001 - gunicorn's hook signature
    """Exempt everything loaded at start-up from the cyclic garbage collector's
    full passes, which a large listing (many small objects) would otherwise trigger."""
    gc.freeze()


def child_exit(server: Arbiter, worker: Worker) -> None:  # noqa: ARG001 - gunicorn's hook signature
    """With PROMETHEUS_MULTIPROC_DIR set, drop a dead worker's live gauges (docs/operations.md)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

"""Default gunicorn settings for Hatrac (``gunicorn --config python:hatrac.gunicorn_conf``).

Threads let one worker overlap slow clients and disk or database waits;
the long timeout leaves room for 100 MiB PUTs and job finalization on slow
links. Every value can be overridden on the command line.
"""

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


def child_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """With PROMETHEUS_MULTIPROC_DIR set, drop a dead worker's live gauges (docs/operations.md)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

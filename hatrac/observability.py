"""What operators watch: health endpoints, Prometheus metrics and the request log.

:func:`init_observability` is called by :func:`hatrac.app.init_app` and adds,
outside the service prefix (``health_prefix``, default ``/hatrac-health``):

* ``GET PREFIX/live``: liveness. Answers 200 as long as the process serves
  requests; touches neither database nor storage, so it is cheap enough to
  poll every second.
* ``GET PREFIX/ready``: readiness. 200 when the database answers and the
  storage backend passes :meth:`~hatrac.model.storage.Storage.check`, else 503;
  the JSON body says which part failed and why.
* ``GET PREFIX/metrics``: Prometheus text exposition, only when
  ``metrics_enabled`` is true (404 otherwise). Under several worker processes
  (gunicorn ``--workers N``, mod_wsgi ``processes=N``) set the environment
  variable ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory writable by the
  service *before it starts* (the packaged gunicorn config does it by
  itself: :mod:`hatrac.metrics_dir`); each scrape then sums all workers (see
  docs/operations.md).

Every request (health checks included) is also written as one JSON line
(``"kind": "access"``, see :mod:`hatrac.logs`) to the ``hatrac.access``
logger when ``access_log`` is true: request id, method, path, status, bytes
in and out, duration and client identity.
Admins route that logger like any other (its records carry the JSON text as
their message); by default it goes to standard error.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional

from flask import Flask, Response, g, request

from .logs import LineHandler, json_line

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

access_logger = logging.getLogger("hatrac.access")
logger = logging.getLogger("hatrac")

_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    """The Prometheus metrics of one application (a private registry per app)."""

    def __init__(self, state: Any) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.state = state
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "hatrac_requests",
            "HTTP requests answered, by method and status.",
            ["method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "hatrac_request_duration_seconds",
            "Time from request start to response, by method.",
            ["method"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.bytes_in = Counter(
            "hatrac_request_body_bytes", "Request body bytes received.", registry=self.registry
        )
        self.bytes_out = Counter(
            "hatrac_response_body_bytes", "Response body bytes sent.", registry=self.registry
        )
        self.registry.register(_UploadJobsCollector(state))

    def observe(
        self, method: str, status: int, seconds: float, bytes_in: int, bytes_out: int
    ) -> None:
        self.requests.labels(method, str(status)).inc()
        self.duration.labels(method).observe(seconds)
        if bytes_in:
            self.bytes_in.inc(bytes_in)
        if bytes_out:
            self.bytes_out.inc(bytes_out)

    def exposition(self) -> tuple[bytes, str]:
        """The text of a scrape: this process, or every worker in multiprocess mode."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            registry.register(_UploadJobsCollector(self.state))
        return generate_latest(registry), CONTENT_TYPE_LATEST


class _UploadJobsCollector:
    """``hatrac_upload_jobs_open``: read from the directory at scrape time."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        count = _open_upload_jobs(self.state)
        if count is not None:
            yield GaugeMetricFamily(
                "hatrac_upload_jobs_open", "Chunked upload jobs not yet finished.", value=count
            )


def _open_upload_jobs(state: Any) -> Optional[int]:
    """How many upload jobs are open, when the model can tell (None otherwise)."""
    try:
        from .model.directory import uploads as job_rows
    except ImportError:  # a version without upload jobs
        return None
    try:
        return len(state.directory.run(job_rows.all_job_keys))
    except Exception as error:  # a scrape must not fail because the database is down
        logger.warning("cannot count upload jobs for metrics: %s", error)
        return None


# -- health ---------------------------------------------------------------------
# storage with less free space than this is reported as full
FULL_BELOW_BYTES = 1024 * 1024


def _json(body: dict, status: int = 200) -> Response:
    response = Response(json.dumps(body) + "\n", status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def readiness(state: Any) -> tuple[bool, dict]:
    """Check the database and the storage; returns (ready, per-part report)."""
    report: dict[str, str] = {}
    ready = True
    try:
        state.require_database()
        state.directory.ping()
        report["database"] = "ok"
    except Exception as error:
        ready = False
        report["database"] = f"unavailable: {_one_line(error)}"
    try:
        state.storage.check()
        report["storage"] = "ok"
    except Exception as error:
        ready = False
        report["storage"] = f"unavailable: {_one_line(error)}"
    else:
        # full storage still serves reads (so the service stays ready), but
        # every write answers 507 until space is freed: say so
        space = state.storage.space_left()
        if space is not None and space < FULL_BELOW_BYTES:
            report["storage"] = f"full: {space} bytes free; writes answer 507 until space is freed"
    return ready, report


def _one_line(error: BaseException) -> str:
    cause = error.__cause__ or error
    text = str(getattr(error, "message", None) or error)
    if cause is not error and str(cause):
        text = f"{text} ({str(cause).strip()})"
    return " ".join(text.split())


# -- the request log and metrics hooks -----------------------------------------
class _CountingInput:
    """Wraps ``wsgi.input`` to count the request body bytes the app reads."""

    def __init__(self, stream: Any) -> None:  # the server's wsgi.input
        self._stream = stream
        self.count = 0

    def read(self, *args):
        data = self._stream.read(*args)
        self.count += len(data)
        return data

    def readinto(self, buffer: WriteableBuffer) -> Optional[int]:
        count = self._stream.readinto(buffer)
        self.count += count or 0
        return count

    def read1(self, *args):
        data = self._stream.read1(*args)
        self.count += len(data)
        return data

    def readline(self, *args):
        data = self._stream.readline(*args)
        self.count += len(data)
        return data

    def readlines(self, *args):
        lines = self._stream.readlines(*args)
        self.count += sum(len(line) for line in lines)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self.count += len(line)
            yield line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _CountingMiddleware:
    """WSGI middleware installing :class:`_CountingInput` before Flask sees the request."""

    def __init__(self, wsgi_app: Callable) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        environ["hatrac.started"] = time.monotonic()
        if "wsgi.input" in environ:
            environ["wsgi.input"] = environ["hatrac.input"] = _CountingInput(environ["wsgi.input"])
        return self.wsgi_app(environ, start_response)


def request_id(environ: dict) -> str:
    """The request's id: the client's ``X-Request-Id`` when it is a short token, else new."""
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    if incoming and len(incoming) <= 64 and incoming.replace("-", "").isalnum():
        return incoming
    # an id, not a secret: the process's PRNG (reseeded in each forked worker)
    # spares a getrandom() system call per request
    return f"{random.getrandbits(64):016x}"


def _response_bytes(response: Response) -> int:
    if request.method == "HEAD" or response.status_code in (204, 304):
        return 0
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit():
        return int(length)
    return 0


def _after_request(response: Response) -> Response:
    """Record the request once its body has been sent (or now, for passthrough bodies)."""
    from flask import current_app

    observer = current_app.extensions.get("hatrac.observability")
    if observer is None:
        return response
    environ = request.environ
    client = g.get("client")
    entry = {
        "request_id": g.get("request_id"),
        "method": request.method,
        "path": environ.get("RAW_URI")
        or environ.get("REQUEST_URI")
        or request.full_path.rstrip("?"),
        "status": response.status_code,
        "client": getattr(client, "identity", None),
        "remote_addr": environ.get("REMOTE_ADDR"),
        "user_agent": environ.get("HTTP_USER_AGENT"),
    }
    started = environ.get("hatrac.started", time.monotonic())
    counted = environ.get("hatrac.input")
    bytes_out = _response_bytes(response)
    # without the counting wrapper (no wsgi.input), the declared length (None if chunked)
    request_length = request.content_length if counted is None else None

    def record() -> None:
        seconds = time.monotonic() - started
        bytes_in = counted.count if counted is not None else (request_length or 0)
        entry["bytes_in"] = bytes_in
        entry["bytes_out"] = bytes_out
        entry["duration_ms"] = round(seconds * 1000, 3)
        observer.record(entry, seconds)

    if response.direct_passthrough:
        # a file handed to the server (sendfile): we never see its end, so record now
        record()
    else:
        response.call_on_close(record)
    return response


# what marks an access record as a finished JSON line (see hatrac.logs.JsonFormatter)
_JSON_LINE = {"hatrac_json": True}


class Observer:
    """Per-app sink of finished requests: the access log and the metrics."""

    def __init__(self, state: Any) -> None:
        config = state.config
        self.access_log = config.access_log
        self.metrics: Optional[Metrics] = Metrics(state) if config.metrics_enabled else None

    def record(self, entry: dict, seconds: float) -> None:
        if self.access_log and access_logger.isEnabledFor(logging.INFO):
            _log_access(json_line("access", entry))
        if self.metrics is not None:
            self.metrics.observe(
                entry["method"], entry["status"], seconds, entry["bytes_in"], entry["bytes_out"]
            )


def _log_access(line: str) -> None:
    handlers = access_logger.handlers
    if (
        len(handlers) == 1
        and type(handlers[0]) is LineHandler
        and handlers[0].level <= logging.INFO
        and not handlers[0].filters
        and not access_logger.filters
        and not access_logger.propagate
    ):  # the default destination, as installed: straight to it
        handlers[0].write_line(line)
        return
    # Logger.info less its search of the caller's source line (which no
    # handler of a finished JSON line uses): the same record, handlers, filters
    access_logger.handle(
        access_logger.makeRecord(
            access_logger.name, logging.INFO, __file__, 0, line, None, None, extra=_JSON_LINE
        )
    )


def init_observability(app: Flask, state: Any) -> Observer:
    """Add the health endpoints, metrics and request log to ``app``."""
    observer = Observer(state)
    app.extensions["hatrac.observability"] = observer
    prefix = state.config.health_prefix

    def live() -> Response:
        return _json({"status": "alive"})

    def ready() -> Response:
        ok, report = readiness(app.extensions["hatrac"])
        return _json({"status": "ready" if ok else "unready", **report}, 200 if ok else 503)

    def metrics() -> Response:
        if observer.metrics is None:
            return _json(
                {"status": "disabled", "detail": "set metrics_enabled to true in the config"}, 404
            )
        body, content_type = observer.metrics.exposition()
        return Response(body, mimetype=None, content_type=content_type)

    app.add_url_rule(f"{prefix}/live", "hatrac_live", live, methods=["GET"])
    app.add_url_rule(f"{prefix}/ready", "hatrac_ready", ready, methods=["GET"])
    app.add_url_rule(f"{prefix}/metrics", "hatrac_metrics", metrics, methods=["GET"])
    app.after_request(_after_request)
    if not isinstance(app.wsgi_app, _CountingMiddleware):
        app.wsgi_app = _CountingMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    if state.config.access_log and not access_logger.handlers:
        # a default destination, so the log exists without any logging setup;
        # admins who configure 'hatrac.access' themselves replace it
        access_logger.addHandler(LineHandler(sys.stderr))
        access_logger.setLevel(logging.INFO)
        access_logger.propagate = False
    return observer

"""One log format: every line Hatrac writes is one JSON object.

Each object starts with ``time`` (UTC, ISO 8601 with milliseconds, e.g.
``2026-12-01T10:20:14.123Z``) and ``kind``:

* ``access``: one line per request (:mod:`hatrac.observability`);
* ``audit``: security events (:mod:`hatrac.auth.audit`);
* ``startup``: the service starting, and gunicorn's own lifecycle lines
  (listening, workers booting and exiting, signals, shutdown);
* ``error``: the service log proper (warnings, errors, tracebacks; with
  ``log_level`` INFO or DEBUG also diagnostics: ``level`` says which).

Access and audit records carry their finished JSON line as the message
(:func:`json_line`), so a handler with a plain ``%(message)s`` format writes
them unchanged; :class:`JsonFormatter` turns every other record into the
same shape. :class:`GunicornFormatter` gives gunicorn's error log that format
(its ``logger_class`` in :mod:`hatrac.gunicorn_conf`). docs/operations.md lists
every field.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any, Optional

KINDS = ("access", "audit", "startup", "error")


# the formatted whole second of the last timestamp: a request log line costs a
# strftime only once per second (the pair is replaced at once, so threads agree)
_last_second: tuple[int, str] = (-1, "")
# one encoder for every line (json.dumps with options builds a new one per call)
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def timestamp(seconds: Optional[float] = None) -> str:
    """``seconds`` (default now) as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC."""
    global _last_second
    if seconds is None:
        seconds = time.time()
    whole = int(seconds)
    millis = int((seconds - whole) * 1000)
    cached_second, text = _last_second
    if cached_second != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _last_second = (whole, text)
    return f"{text}.{millis:03d}Z"


def json_line(kind: str, fields: dict, seconds: Optional[float] = None) -> str:
    """One compact JSON object: ``time`` and ``kind`` first, then ``fields``."""
    record = {"time": timestamp(seconds), "kind": kind}
    record.update(fields)
    return _ENCODER.encode(record)


class JsonFormatter(logging.Formatter):
    """Formats any log record as one JSON line of the common shape.

    Records whose message already is such a line (``record.hatrac_json``)
    pass unchanged. Others become ``{"time", "kind", "level", "logger",
    "pid", "message"}`` plus ``exception`` (the traceback as one string).
    """

    def __init__(self, kind: Optional[str] = None) -> None:
        super().__init__()
        self.kind = kind

    def kind_of(self, record: logging.LogRecord) -> str:
        explicit = getattr(record, "hatrac_kind", None)
        if explicit:
            return explicit
        if self.kind:
            return self.kind
        if record.name == "hatrac.startup":
            return "startup"
        return "error"

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "hatrac_json", False):
            return record.getMessage()
        fields: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process or os.getpid(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exception"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return json_line(self.kind_of(record), fields, record.created)


class GunicornFormatter(JsonFormatter):
    """gunicorn's error log: its INFO lines (start, listening, workers booting and
    exiting, signals, shutdown) are ``startup``; warnings and errors are ``error``."""

    def kind_of(self, record: logging.LogRecord) -> str:
        return "startup" if record.levelno <= logging.INFO else "error"


class LineHandler(logging.StreamHandler):
    """The default destination of access lines: one ``os.write`` a line.

    :meth:`write_line` writes a finished line and its newline with one system
    call on the stream's file descriptor, without the handler's lock or a
    log record: a line of a few hundred bytes is written whole by one call
    (to a pipe, up to ``PIPE_BUF``; to a file opened for appending, at its
    end), so lines of concurrent requests never mix, and no thread waits for
    another's write: under load the access line cost a small GET 26 µs of
    worker CPU this way, 47 through ``Logger.handle`` (docs/benchmark.md). Records
    logged the usual way go through :meth:`emit`, the same way; a stream
    without a file descriptor is written as ``StreamHandler`` writes it.
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self.setFormatter(logging.Formatter("%(message)s"))
        try:
            self.fd: Optional[int] = self.stream.fileno()
            self.stream.flush()  # what it holds goes first
        except (AttributeError, OSError, ValueError):  # no descriptor (a StringIO)
            self.fd = None

    def write_line(self, line: str) -> None:
        """Write ``line`` (one line, no newline) and a newline."""
        if self.fd is None:
            self.emit(logging.makeLogRecord({"msg": line}))
            return
        data = (line + "\n").encode("utf-8", "backslashreplace")
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:
            self.handleError(logging.makeLogRecord({"msg": line}))

    def emit(self, record: logging.LogRecord) -> None:
        if self.fd is None:
            super().emit(record)
            return
        try:
            line = self.format(record)
        except Exception:  # as StreamHandler.emit does
            self.handleError(record)
            return
        self.write_line(line)


def log_startup(message: str, **fields: Any) -> None:
    """One ``startup`` line on the ``hatrac.startup`` logger."""
    record_fields = {"message": message, "pid": os.getpid(), **fields}
    startup_logger.info(json_line("startup", record_fields), extra={"hatrac_json": True})


def configure_default_logging(level: str) -> None:
    """Standard error in the JSON format, unless logging is already configured.

    Like :func:`logging.basicConfig`, this does nothing when the root logger
    has handlers: a site's own logging configuration wins.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)


startup_logger = logging.getLogger("hatrac.startup")
# the start-up line is written whatever log_level is, as the audit is
if startup_logger.level == logging.NOTSET:
    startup_logger.setLevel(logging.INFO)

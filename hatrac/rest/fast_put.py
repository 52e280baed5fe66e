"""The WSGI fast path of a plain PUT of a small object (before Flask).

Flask's request context, routing, hooks and ``Response`` object are about a
quarter of the CPU of a small PUT in process. :class:`FastPuts`, called by
:class:`~hatrac.rest.fast.FastReads` for PUTs, stores a new object or
version itself when the request is plain: a ``Content-Length`` body no
larger than ``inline_max_size`` (so it is kept inline, in the transaction
that binds it), no query string, ``Expect``, ``If-*``, ``Range``,
``Origin``, ``Authorization`` or ``Transfer-Encoding`` header, not the
namespace content type, a bare object name (no version, sub-resource or
trailing slash), no CORS or download origin configured, the database set up.

It makes the same model call as :func:`hatrac.rest.names.put_object` and
answers what it answers (the same headers in the same order, the same
uri-list body; ``test/rest/test_fast_put.py`` compares both), with the same
access log line and metrics. Anything else goes to Flask untouched, before
a byte of the body is read. A request the model refuses, or a body that
cannot be read whole, is handed to Flask after it: the bytes read are
replayed to it, and a model error travels with the request
(``environ[PREFETCHED]``) for ``put_object`` to raise, so the PUT is never
attempted twice and the error is rendered (negotiated, logged) by Flask.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Iterator, Optional

from werkzeug.datastructures import EnvironHeaders
from werkzeug.urls import iri_to_uri

from ..model.credentials import DeferredClient, deferring
from ..observability import request_id
from . import BODY_TAKEN, PREFETCHED, raw_request_path

# request headers whose handling is Flask's, on both fast paths (rest/fast.py)
FLASK_HEADERS = (
    "HTTP_AUTHORIZATION",
    "HTTP_RANGE",
    "HTTP_IF_RANGE",
    "HTTP_IF_MATCH",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_ORIGIN",
    "HTTP_TRANSFER_ENCODING",
    "HTTP_EXPECT",
)
# and what else makes a PUT Flask's (when present and not empty)
_NOT_PLAIN = frozenset(
    (
        "QUERY_STRING",
        *FLASK_HEADERS,
        "HTTP_REFERER",  # a cookie request from another page: the CSRF check is Flask's
    )
)
# a location of only these characters is its own URI (what iri_to_uri returns)
_PLAIN_LOCATION = re.compile(r"[A-Za-z0-9_.~%/:-]*")


def fast_paths_open(state: Any) -> bool:
    """Whether the service may answer before Flask at all: set up, and no CORS or
    download origin (whose headers and rules are Flask's)."""
    config = state.config
    return state.initialized and not config.cors_allowed_origins and not config.download_origin


def resolving(client: Any, work: Callable[[Any], Any]) -> tuple[Any, Any]:
    """(``work(client)``, the real client): a deferred credential is looked up with
    the first name ``work`` resolves, as :func:`hatrac.rest.dispatch` does."""
    if isinstance(client, DeferredClient):
        with deferring(client):
            result = work(client)
            return result, client.resolved()
    return work(client), client


def record_access(
    observer: Any,
    environ: dict,
    entry: tuple,
    bytes_in: int,
    bytes_out: int,
    started: float,
) -> None:
    """Write the access log line and metrics Flask's path writes for this request;
    ``entry`` is (request id, method, path as logged, status, client)."""
    identifier, method, logged, status, client = entry
    seconds = time.monotonic() - started
    observer.record(
        {
            "request_id": identifier,
            "method": method,
            "path": logged,
            "status": status,
            "client": getattr(client, "identity", None),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
            "duration_ms": round(seconds * 1000, 3),
        },
        seconds,
    )


def object_path(state: Any, environ: dict, elsewhere: tuple) -> Optional[tuple[str, Any]]:
    """(the path as logged, the parsed path) of a request naming an object bare
    (no version, sub-resource, argument or trailing slash), else None."""
    logged = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not logged:
        return None
    prefix = state.config.service_prefix
    raw = raw_request_path(environ)
    if not raw.startswith(prefix + "/") or raw.startswith(elsewhere or ("\0",)):
        return None
    try:
        path = state.parser.parse(raw[len(prefix) :])
    except Exception:  # rendered by the Flask path, which parses again
        return None
    if (
        path.subresource is not None
        or path.version is not None
        or path.is_root
        or path.trailing_slash
        or path.arguments
    ):
        return None
    return logged, path


class Replayed:
    """A request body read by the fast path, then the rest of the original stream."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size is None or size < 0 or size >= len(self._head):
                head, self._head = self._head, b""
                more = self._rest.read(-1 if size is None or size < 0 else size - len(head))
                return head + more if more else head
            head, self._head = self._head[:size], self._head[size:]
            return head
        return self._rest.read(size)

    def readline(self, size: int = -1) -> bytes:
        if self._head:
            return self.read(size if size is not None and size >= 0 else len(self._head))
        return self._rest.readline(size)

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(64 * 1024), b"")


class _Failing:
    """A stream whose every read raises the error the fast path's read met."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def read(self, size: int = -1) -> bytes:
        raise self._error

    readline = read


class FastPuts:
    """Plain PUTs of small objects, answered without Flask."""

    def __init__(self, state: Any, observer: Any, elsewhere: tuple) -> None:
        self.state = state
        self.observer = observer
        self._elsewhere = elsewhere or ("\0",)

    def _length(self, environ: dict) -> Optional[int]:
        """The body's declared length when the request is plain, else None."""
        declared = environ.get("CONTENT_LENGTH")
        if not declared or not declared.isascii() or not declared.isdigit():
            return None
        for key in _NOT_PLAIN.intersection(environ):
            if environ[key]:
                return None
        state = self.state
        config = state.config
        if not fast_paths_open(state):
            return None
        length = int(declared)
        limit = getattr(state.model.storage, "inline_max_size", 0)
        if length > limit or length > config.max_request_payload_size:
            return None
        return length

    def answer(self, environ: dict, started: float) -> Optional[tuple]:
        """(status, headers, body) of the PUT, or None to hand it to Flask."""
        from .names import NAMESPACE_TYPE, object_metadata

        length = self._length(environ)
        if length is None:
            return None
        content_type = environ.get("CONTENT_TYPE") or ""
        if content_type.split(";")[0].strip().lower() == NAMESPACE_TYPE:
            return None
        state = self.state
        prefix = state.config.service_prefix
        found = object_path(state, environ, self._elsewhere)
        if found is None:
            return None
        logged, path = found
        try:
            metadata = object_metadata(EnvironHeaders(environ))
            client = state.authenticate_deferred(environ)
        except Exception:  # rendered by the Flask path, which asks again
            return None
        stream = environ["wsgi.input"]
        try:
            body = stream.read(length) if length else b""
        except Exception as error:
            # Flask's reader meets the same failure (and answers its 400)
            environ["wsgi.input"] = Replayed(b"", _Failing(error))
            return None
        if len(body) != length:
            # a body shorter than declared: Flask reads (and refuses) it again
            environ["wsgi.input"] = Replayed(body, stream)
            return None
        asked = client
        model = state.model
        taken: list = []

        def blocks():
            taken.append(True)
            yield body

        try:
            version, client = resolving(
                client,
                lambda who: model.put_object(
                    who, path.name, blocks(), metadata, length=length, body_sent=True
                ),
            )
        except Exception as error:
            # never attempted twice: Flask renders the error, given the body again
            # (and reads it, if the model had read it before refusing)
            environ["wsgi.input"] = Replayed(body, stream)
            environ[PREFETCHED] = (asked, error)
            environ[BODY_TAKEN] = bool(taken)
            return None
        from ..urls import resource_url

        url = resource_url(prefix, version.name, version.version)
        reply = (url + "\n").encode()
        identifier = request_id(environ)
        headers = [
            ("Content-Type", "text/uri-list"),
            ("Content-Length", str(len(reply))),
            ("Location", url if _PLAIN_LOCATION.fullmatch(url) else iri_to_uri(url)),
            ("ETag", version.etag),
            ("Content-Location", url),
            ("X-Request-Id", identifier),
        ]
        entry = (identifier, "PUT", logged, 201, client)
        record_access(self.observer, environ, entry, length, len(reply), started)
        return "201 CREATED", headers, [reply]

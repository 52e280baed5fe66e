"""A WSGI fast path for the hottest request: a plain GET or HEAD of a small object.

Flask's request context, routing, hooks and ``Response`` object cost more
CPU than the rest of such a request (py-spy, in process: about 245 of
360 µs). :class:`FastReads` sits in front of the Flask application made by
:func:`hatrac.create_app` and answers a GET or HEAD of an object's current
version itself when the request is plain and the version is kept inline:
no query string, body, ``Range``, ``If-*``, ``Origin`` or ``Authorization``
header (a session cookie is fine: it is looked up with the name, as in
:func:`hatrac.rest.dispatch`), no CORS or download origin configured, no
HTML wanted while the web interface is on, the database set up.

It answers with what the Flask path answers (the same functions build the
headers; ``test/rest/test_fast.py`` compares both), writes the same access
log line and metrics, and hands everything else to Flask, so every error,
listing, renamed or file-stored version, and anything it does not know, is
rendered by Flask. A request handed over after the lookup carries what was
read (the client and the model's answer or error, ``environ[PREFETCHED]``),
which :func:`hatrac.rest.dispatch` and ``get_name`` use instead of asking
again: it costs the statements of the Flask path, no more.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Optional

from ..errors import HatracError
from ..model.resources import Listing
from ..observability import request_id
from . import PREFETCHED, Call
from .fast_put import (
    FLASK_HEADERS,
    FastPuts,
    fast_paths_open,
    object_path,
    record_access,
    resolving,
)

# the endpoints of the protocol's resources (rest/__init__.py, create_blueprint)
_OURS = ("hatrac.root", "hatrac.resource")


class FastReads:
    """WSGI middleware: plain reads of small objects here, all else to ``flask``."""

    def __init__(self, state: Any, observer: Any, flask: Callable, rules: Iterable = ()) -> None:
        self.state = state
        self.observer = observer
        self.flask = flask
        prefix = state.config.service_prefix
        # paths under the service prefix that another route of the app serves
        self._elsewhere = tuple(
            text
            for rule in rules
            if rule.endpoint not in _OURS
            and (text := rule.rule.split("<", 1)[0]).startswith(prefix + "/")
        )
        self._puts = FastPuts(state, observer, self._elsewhere)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.monotonic()
        if environ.get("REQUEST_METHOD") == "PUT":
            answer = self._puts.answer(environ, started)  # rest/fast_put.py
        else:
            answer = self._plain(environ) and self._answer(environ, started)
        if not answer:
            return self.flask(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return body

    def _plain(self, environ: dict) -> bool:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return False
        if environ.get("QUERY_STRING") or environ.get("CONTENT_LENGTH") not in (None, "", "0"):
            return False
        if any(key in environ for key in FLASK_HEADERS):
            return False
        state = self.state
        if not fast_paths_open(state):
            return False
        if state.pages is not None and "html" in environ.get("HTTP_ACCEPT", ""):
            return False  # the web interface may answer with a page
        return True

    def _answer(self, environ: dict, started: float) -> Optional[tuple]:
        """(status, headers, body) of the request, or None to hand it to Flask."""
        from .names import version_headers

        state = self.state
        found = object_path(state, environ, self._elsewhere)
        if found is None:
            return None
        logged, path = found
        try:
            client = state.authenticate_deferred(environ)
        except Exception:  # rendered by the Flask path, which asks again
            return None
        asked = client
        try:
            found, client = resolving(client, lambda who: state.model.read_name(who, path.name))
        except HatracError as error:
            # rendered by the Flask path, which is given the error instead of asking again
            environ[PREFETCHED] = (asked, error)
            return None
        except Exception:  # an unexpected failure: the Flask path tries (and reports) it
            return None
        if isinstance(found, Listing) or found[1].inline is None or found[1].name != path.name:
            # a listing, a file to stream or a version renamed away: Flask's, with the answer
            environ[PREFETCHED] = (asked, found)
            return None
        version = found[1]
        method = environ["REQUEST_METHOD"]
        call = Call(state=state, path=path, client=client, method=method)
        headers = version_headers(call, version)
        headers["Content-Length"] = str(version.size)
        identifier = request_id(environ)
        headers["X-Request-Id"] = identifier
        body = [] if method == "HEAD" or not version.size else [version.inline]
        sent = 0 if method == "HEAD" else version.size
        record_access(
            self.observer, environ, (identifier, method, logged, 200, client), 0, sent, started
        )
        return "200 OK", list(headers.items()), body

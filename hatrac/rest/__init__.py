"""The REST layer: a Flask blueprint that parses, authorizes via the model, renders.

Every request under the service prefix reaches :func:`dispatch`, which parses
the raw (still percent-encoded) request path, identifies the client, and
hands the request to the handler module of its resource family:

* :mod:`.names`    namespaces, objects, versions and ``;versions``
* :mod:`.acl`      ``;acl`` sub-resources
* further families (``;metadata``, ``;upload``) register in :data:`FAMILIES`

Handlers raise :class:`~hatrac.errors.HatracError`; one error handler renders
them in the negotiated format.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter

from ..errors import BadRequest, HatracError, MethodNotAllowed, NotFound
from ..model.client import ANONYMOUS, Client
from ..model.credentials import DeferredClient, deferring
from ..urls import ResourcePath, resource_url
from . import render
from .content_safety import on_download_origin

if TYPE_CHECKING:
    from ..config import Config
    from ..model.service import Hatrac

logger = logging.getLogger(__name__)

METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE"]
# the environ key of what the fast path read before handing a request over
PREFETCHED = "hatrac.prefetched"
# with a PUT's error handed over: whether the model had read the body (rest/fast_put.py)
BODY_TAKEN = "hatrac.body_taken"


@dataclass
class Call:
    """One request as the handlers see it: the parsed path, the client, the service."""

    state: object
    path: ResourcePath
    client: Client
    method: str
    # what the fast path (rest/fast.py) already read for this GET of a bare name:
    # the model's answer, or the error it raised
    prefetched: object = None

    @property
    def model(self) -> Hatrac:
        return self.state.model

    @property
    def config(self) -> Config:
        return self.state.config

    @property
    def prefix(self) -> str:
        return self.state.config.service_prefix

    def url(self, name: str, version: Optional[str] = None) -> str:
        return resource_url(self.prefix, name, version)


Handler = Callable[[Call], Response]

# sub-resource name (None: the name itself) -> function choosing a handler
FAMILIES: dict[Optional[str], Callable[[Call], Response]] = {}


def register_family(subresource: Optional[str], route: Callable[[Call], Response]) -> None:
    FAMILIES[subresource] = route


def by_method(call: Call, handlers: dict[str, Handler]) -> Response:
    """Pick the handler for the request method, or answer 405 with Allow; an OPTIONS
    request (not a CORS preflight, which rest/cors.py answers first) gets the Allow
    of this very resource."""
    method = "GET" if call.method == "HEAD" and "HEAD" not in handlers else call.method
    handler = handlers.get(method)
    if handler is None:
        allowed = list(handlers) + (["HEAD"] if "GET" in handlers else [])
        if call.method == "OPTIONS":
            response = Response(status=200)
            response.headers["Allow"] = ", ".join(sorted({*allowed, "OPTIONS"}))
            return response
        raise MethodNotAllowed(call.method, allowed)
    return handler(call)


def raw_request_path(environ: dict) -> str:
    """The request path exactly as the client sent it, before any decoding."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is None:
        # a server that keeps no raw path: rebuild it (encoded slashes are lost)
        from urllib.parse import quote

        raw = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
    if "://" in raw.split("?", 1)[0]:  # absolute-form request target
        raw = "/" + raw.split("://", 1)[1].split("/", 1)[-1]
    return raw.split("?", 1)[0].split("#", 1)[0]


def dispatch(path: str = "") -> Response:
    """The one view of the blueprint: route a raw path to its resource family."""
    state = current_app.extensions["hatrac"]
    prefix = state.config.service_prefix
    raw = raw_request_path(request.environ)
    if not raw.startswith(prefix):
        raise NotFound(f"{raw} is not under the service prefix {prefix}.")
    parsed = state.parser.parse(raw[len(prefix) :])
    # a request the fast path handed over after reading: its client and answer
    prefetched = request.environ.pop(PREFETCHED, None)
    if on_download_origin(state.config):
        # no credential is honoured there: it serves what anonymous may read
        client = ANONYMOUS
    elif prefetched is not None:
        client = prefetched[0]
    else:
        client = g.get("client") or state.authenticate_deferred(request.environ)
    call = Call(state=state, path=parsed, client=client, method=request.method)
    if prefetched is not None:
        call.prefetched = prefetched[1]
    route = FAMILIES.get(parsed.subresource)
    if route is None:
        raise BadRequest(f"The sub-resource ;{parsed.subresource} is not supported here.")
    if not isinstance(client, DeferredClient):
        g.client = client
        return route(call)
    # the session or token is looked up by the first name resolution, in its statement;
    # whatever the answer, a dead credential is a 401 before any other outcome
    try:
        with deferring(client):
            response = route(call)
    except HatracError as error:
        if error.status != 401:
            g.client = client.resolved()
        raise
    g.client = client.resolved()
    return response


def handle_hatrac_error(error: HatracError) -> Response:
    state = current_app.extensions["hatrac"]
    request_id = g.get("request_id")
    if error.status in (401, 403):
        from .authn import audit_denial

        audit_denial(error)
    if error.status >= 500:
        logger.warning("request %s failed: %s %s", request_id, error.status, error.message)
    login = None
    if error.status == 401:
        from ..login import challenge, login_link

        html = render.negotiate(render.ERROR_TYPES) == "text/html"
        error.headers.setdefault("WWW-Authenticate", challenge(state.config, request.environ, html))
        login = login_link(state.config, request.environ)
    return render.error_response(error, state.config.error_templates, request_id, login)


def handle_http_exception(error: HTTPException) -> Response:
    """Werkzeug's own errors (e.g. a client disconnect) in our error format."""
    wrapped = HatracError(error.description)
    wrapped.status = error.code or 500
    wrapped.title = error.name
    if isinstance(error, HTTPException) and error.response is not None:
        return error.response
    return handle_hatrac_error(wrapped)


class AnyPath(PathConverter):
    """Werkzeug's ``path`` converter, matching every character: its ``.`` stops at a
    newline, so a name holding ``%0A`` (decoded in PATH_INFO) missed the route and
    got the router's 404 instead of the parser's 400 (:mod:`hatrac.urls`)."""

    regex = "[^/](?s:.)*?"


def create_blueprint(prefix: str) -> Blueprint:
    """The Hatrac blueprint, serving the protocol under ``prefix``."""
    from . import acl, metadata, names, upload  # noqa: F401  (they register their families)

    blueprint = Blueprint("hatrac", __name__)
    # before the rules below, which use it, are added to the application's map
    blueprint.record_once(lambda setup: setup.app.url_map.converters.update(hatrac_path=AnyPath))
    # merge_slashes off: an encoded "/" (%2F) is data, and PATH_INFO decodes it,
    # so "/hatrac/%2Ftop" must reach dispatch, not be redirected to "/hatrac/top"
    blueprint.add_url_rule(
        prefix or "/",
        "root",
        dispatch,
        methods=[*METHODS, "OPTIONS"],
        provide_automatic_options=False,  # OPTIONS says what the resource takes
        strict_slashes=False,
        merge_slashes=False,
    )
    blueprint.add_url_rule(
        (prefix or "") + "/<hatrac_path:path>",
        "resource",
        dispatch,
        methods=[*METHODS, "OPTIONS"],
        provide_automatic_options=False,
        merge_slashes=False,
    )
    blueprint.register_error_handler(HatracError, handle_hatrac_error)
    return blueprint

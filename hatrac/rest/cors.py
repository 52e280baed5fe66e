"""CORS: which browser apps on other origins may call the API, and how.

``cors_allowed_origins`` lists origins exactly as browsers send them
(:mod:`hatrac.origins`). For a listed origin, every response under the
service prefix and ``/authn`` carries ``Access-Control-Allow-Origin`` (the
origin itself), ``Access-Control-Allow-Credentials: true`` and
``Access-Control-Expose-Headers`` (ETag, Location, the digests, ...). An entry
``*`` lets any other origin make credential-less calls: it is answered
``Access-Control-Allow-Origin: *``, never with credentials, and its
preflights do not grant ``Authorization``.

Preflights (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
are answered here, before any authentication, on every path in scope: 204
with the grant, or 403 with the reason (unlisted or malformed origin,
unknown method or header) and no ``Access-Control-*`` header at all.
Responses always carry ``Vary: Origin`` once any origin is configured.

The CSRF rule for cookie clients accepts the listed origins too
(:func:`hatrac.auth.session.same_origin`); ``*`` never counts there.
"""

from __future__ import annotations

from typing import Optional

from flask import Flask, Response, current_app, request

from ..errors import Forbidden

METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
# what the protocol and its clients send (lower case, as browsers list them)
REQUEST_HEADERS = (
    "accept",
    "accept-language",
    "authorization",
    "cache-control",
    "content-disposition",
    "content-language",
    "content-md5",
    "content-sha256",
    "content-type",
    "deriva-client-context",
    "if-match",
    "if-none-match",
    "if-range",
    "range",
    "x-request-id",
    "x-requested-with",
)
EXPOSED_HEADERS = (
    "ETag",
    "Location",
    "Content-Location",
    "Content-MD5",
    "Content-SHA256",
    "Content-Range",
    "Content-Disposition",
    "Content-Length",
    "Content-Type",
    "Accept-Ranges",
    "Last-Modified",
    "Allow",
    "Retry-After",
    "WWW-Authenticate",
    "X-Request-Id",
)


class CorsRefused(Forbidden):
    """A preflight that gets no grant."""


def _in_scope(path: str, prefix: str) -> bool:
    if path.startswith("/authn/") or path == "/authn":
        return True
    return prefix == "" or path == prefix or path.startswith(prefix + "/")


def grant(origin: Optional[str], allowed: list[str]) -> Optional[tuple[str, bool]]:
    """``(Access-Control-Allow-Origin, with credentials)`` for this Origin, or None."""
    if not origin or origin == "*":
        return None
    if origin in allowed:
        return origin, True
    if "*" in allowed:
        return "*", False
    return None


def preflight(allowed: list[str], max_age: int) -> Response:
    """The answer to a preflight: the grant (204) or the reason there is none (403)."""
    origin = request.headers.get("Origin")
    granted = grant(origin, allowed)
    if granted is None:
        raise CorsRefused(
            f"The origin {origin!r} may not call this service from a browser; the service's "
            "administrator lists allowed origins in cors_allowed_origins."
        )
    allow_origin, credentials = granted
    method = request.headers.get("Access-Control-Request-Method", "")
    if method not in METHODS:
        raise CorsRefused(f"The method {method!r} is not supported; allowed: {', '.join(METHODS)}.")
    wanted = [
        header.strip().lower()
        for header in request.headers.get("Access-Control-Request-Headers", "").split(",")
        if header.strip()
    ]
    offered = [h for h in REQUEST_HEADERS if credentials or h != "authorization"]
    unknown = [header for header in wanted if header not in offered]
    if unknown:
        raise CorsRefused(
            f"The request header(s) {', '.join(unknown)} may not be sent from another origin"
            + ("" if credentials else " without a listed origin")
            + f"; allowed: {', '.join(offered)}."
        )
    response = Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = allow_origin
    if credentials:
        response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Access-Control-Allow-Methods"] = ", ".join(METHODS)
    response.headers["Access-Control-Allow-Headers"] = ", ".join(offered)
    response.headers["Access-Control-Max-Age"] = str(max_age)
    response.vary.update(
        ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"]
    )
    return response


def _before_request() -> Optional[Response]:
    config = current_app.extensions["hatrac"].config
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    if "Origin" not in request.headers or not _in_scope(request.path, config.service_prefix):
        return None
    return preflight(config.cors_allowed_origins, config.cors_max_age_secs)


def _after_request(response: Response) -> Response:
    config = current_app.extensions["hatrac"].config
    allowed = config.cors_allowed_origins
    if not allowed or not _in_scope(request.path, config.service_prefix):
        return response
    response.vary.add("Origin")
    if "Access-Control-Allow-Origin" in response.headers:
        return response  # a preflight grant
    granted = grant(request.headers.get("Origin"), allowed)
    if granted is None or request.method == "OPTIONS":
        return response
    allow_origin, credentials = granted
    response.headers["Access-Control-Allow-Origin"] = allow_origin
    if credentials:
        response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
    return response


def init_cors(app: Flask) -> None:
    """Answer preflights and add the CORS headers to responses of ``app``."""
    app.before_request(_before_request)
    app.after_request(_after_request)

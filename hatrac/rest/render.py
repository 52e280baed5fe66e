"""Content negotiation and rendering: listings, uri-lists and errors.

Listings are JSON arrays of URLs by default, ``text/uri-list`` or a small
HTML page when the client's Accept prefers them. Errors are ``text/plain``
by default, ``text/html`` (optionally from ``error_templates``) or RFC 9457
problem details in JSON.
"""

from __future__ import annotations

import html
import json
from string import Template
from typing import Any, Optional

from flask import Response, request

from ..errors import HatracError

LISTING_TYPES = ["application/json", "text/uri-list", "text/html"]
# upstream's exact Content-Type for uri-lists, with no charset: clients compare it literally
URI_LIST = "text/uri-list"
ERROR_TYPES = ["text/plain", "application/json", "application/problem+json", "text/html"]


def negotiate(offers: list[str]) -> str:
    """The offer the client's Accept header prefers; the first offer when indifferent."""
    accept = request.accept_mimetypes
    if not accept or not accept.provided:
        return offers[0]
    best = accept.best_match(offers)
    if best is None:
        return offers[0]
    # "*/*" gives every offer the same quality: keep our default then
    if accept.quality(best) == accept.quality(offers[0]):
        return offers[0]
    return best


def prefers_html() -> bool:
    """True when the client (a browser) prefers HTML to the JSON and uri-list listings."""
    return negotiate(LISTING_TYPES) == "text/html"


def uri_list(items: list[str], prefix: str = "") -> str:
    """A text/uri-list body: each URL (``prefix`` + an item) on a line of its own."""
    return prefix + ("\n" + prefix).join(items) + "\n" if items else ""


def created(url: str, extra_headers: Optional[dict] = None) -> Response:
    """201 with Location and the new URL as a one-line uri-list body."""
    return created_list([url], extra_headers)


def created_list(urls: list[str], extra_headers: Optional[dict] = None) -> Response:
    """201 with a uri-list body of the new URLs; Location names the last one."""
    response = Response(uri_list(urls), status=201, content_type=URI_LIST)
    response.headers["Location"] = urls[-1]
    for key, value in (extra_headers or {}).items():
        response.headers[key] = value
    return response


def listing(items: list[str], title: str, etag: Optional[str] = None, prefix: str = "") -> Response:
    """A list of URLs in the negotiated representation; each URL is ``prefix`` + an item.

    A namespace's listing passes its children's names and the service prefix,
    so that 10,000 children cost a few joins, not a string per child.
    """
    kind = negotiate(LISTING_TYPES)
    if kind == "text/uri-list":
        response = Response(uri_list(items, prefix), content_type=URI_LIST)
    elif kind == "text/html":
        lines = "\n".join(
            f'<li><a href="{html.escape(url, quote=True)}">{html.escape(url)}</a></li>'
            for url in (prefix + item for item in items)
        )
        page = (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head>\n"
            f"<body><h1>{html.escape(title)}</h1>\n<ul>\n{lines}\n</ul></body></html>\n"
        )
        response = Response(page, mimetype="text/html")
    else:
        response = Response(json_list(items, prefix) + "\n", mimetype="application/json")
    if etag:
        response.headers["ETag"] = etag
    response.vary.add("Accept")
    return response


def json_list(items: list[str], prefix: str = "") -> str:
    """``json.dumps([prefix + item for item in items])``, byte for byte, in a few joins
    when no character needs escaping (canonical names are printable ASCII without
    quotes or backslashes, percent-encoded otherwise)."""
    if not items:
        return "[]"
    text = prefix + "".join(items)
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return '["' + prefix + ('", "' + prefix).join(items) + '"]'
    return json.dumps([prefix + item for item in items])


def json_response(value: Any, etag: Optional[str] = None, status: int = 200) -> Response:
    response = Response(json.dumps(value) + "\n", status=status, mimetype="application/json")
    if etag:
        response.headers["ETag"] = etag
    return response


def no_content(etag: Optional[str] = None) -> Response:
    response = Response(status=204)
    if etag:
        response.headers["ETag"] = etag
    return response


def error_response(
    error: HatracError,
    templates: dict,
    request_id: Optional[str] = None,
    login_url: Optional[str] = None,
) -> Response:
    """Render an error in the format the client prefers.

    ``login_url`` (a 401 where sessions are enabled) becomes a "Log in" link
    on HTML pages, ``$login_url`` in templates.
    """
    kind = negotiate(ERROR_TYPES)
    message = error.message
    if kind in ("application/json", "application/problem+json"):
        problem = {
            "type": "about:blank",
            "title": error.title,
            "status": error.status,
            "detail": message,
        }
        if request_id:
            problem["request_id"] = request_id
        response = Response(json.dumps(problem) + "\n", mimetype=kind)
    elif kind == "text/html":
        template = templates.get(str(error.status)) or templates.get("default")
        values = {
            "status": str(error.status),
            "title": html.escape(error.title),
            "message": html.escape(message),
            "login_url": html.escape(login_url or "", quote=True),
        }
        login = (
            f'\n<p><a id="login" href="{values["login_url"]}">Log in</a></p>' if login_url else ""
        )
        if template:
            page = Template(template).safe_substitute(values)
        else:
            page = (
                '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
                f"<title>{values['status']} {values['title']}</title></head>\n"
                f"<body><h1>{values['title']}</h1>\n<p>{values['message']}</p>{login}"
                "</body></html>\n"
            )
        response = Response(page, mimetype="text/html")
    else:
        response = Response(f"{error.status} {error.title}\n{message}\n", mimetype="text/plain")
    response.status_code = error.status
    for key, value in error.headers.items():
        response.headers[key] = value
    response.vary.add("Accept")
    return response

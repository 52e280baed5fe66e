"""The server-rendered pages of the web interface, and the files they load.

:class:`Pages` is the hook the REST layer calls (``state.pages``) when a
browser prefers HTML on a namespace URL (:meth:`Pages.namespace`) or on an
object's ``;versions`` URL (:meth:`Pages.versions`). Each page is rendered
from one model call (a page of children with their current versions, or an
object's versions) so that it is complete at first paint; the JavaScript
modules under ``static/`` then add sorting, filtering, uploads and the
editors, through the same HTTP API as any client.

Every page carries a strict Content-Security-Policy (scripts and styles only
from this origin's files, no inline code), ``nosniff`` and no framing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable, Optional, Union
from urllib.parse import quote

from flask import Response, current_app, g, render_template, request, send_from_directory

from ..errors import BadRequest, HatracError, Unauthenticated
from ..model.browse import PAGE_LIMIT_MAX, SORTS
from ..model.uploads import MAX_CONTENT_LENGTH
from . import STATIC, present, web_root

if TYPE_CHECKING:
    from ..config import Config
    from ..model.browse import InheritedAcl, NamespacePage
    from ..model.client import Client
    from ..model.credentials import DeferredClient
    from ..rest import Call

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def secure(response: Response) -> Response:
    """The headers every page of the interface carries."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-cache, private"
    response.vary.add("Accept")
    response.vary.add("Cookie")
    return response


def _state():
    return current_app.extensions["hatrac"]


def login_url(config: Config, referrer: Optional[str] = None) -> Optional[str]:
    """The login page (returning to ``referrer``), when sessions are enabled."""
    if "session" not in config.authn_providers:
        return None
    here = referrer if referrer is not None else request.full_path.rstrip("?")
    return "/authn/login?referrer=" + quote(here, safe="")


def _here() -> str:
    """The URL of this request as the client sent it (raw path and query)."""
    from ..rest import raw_request_path

    path = raw_request_path(request.environ)
    query = request.environ.get("QUERY_STRING", "")
    return path + ("?" + query if query else "")


def _who(client: Optional[Union[Client, DeferredClient]]) -> tuple[Optional[str], Optional[str]]:
    """(identity, display name) of a client; (None, None) for anonymous or a dead credential."""
    if client is None:
        return None, None
    try:
        return client.identity, client.display_name or client.identity
    except HatracError:  # a deferred session or token lookup that failed
        return None, None


def _page(
    template: str,
    status: int = 200,
    client: Optional[Union[Client, DeferredClient]] = None,
    **values: Any,
) -> Response:
    state = _state()
    config = state.config
    identity, display_name = _who(client if client is not None else g.get("client"))
    prefix = config.service_prefix
    context = {
        "prefix": prefix,
        "root_url": prefix + "/",
        "web": web_root(prefix),
        "static": web_root(prefix) + "/static",
        "identity": identity,
        "display_name": display_name,
        "login_url": login_url(config, _here()),
        "sessions": "session" in config.authn_providers,
        "present": present,
        "request_id": g.get("request_id", ""),
        "max_put": config.max_request_payload_size,
        "max_object": MAX_CONTENT_LENGTH,
    }
    context.update(values)
    response = Response(render_template(template, **context), status=status, mimetype="text/html")
    return secure(response)


def error_page(error: HatracError, client: Optional[Client] = None) -> Response:
    """An error as a page of the interface; an anonymous 401 goes to the login page."""
    config = _state().config
    client = client if client is not None else g.get("client")
    if (
        error.status == 401
        and _who(client)[0] is None
        and request.method in ("GET", "HEAD")
        and login_url(config) is not None
    ):
        response = Response(status=303)
        response.headers["Location"] = login_url(config, _here())
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("Accept")
        return response
    templates = config.error_templates
    if templates.get(str(error.status)) or templates.get("default"):
        from ..rest.render import error_response  # the site's own error pages win

        return error_response(error, templates, g.get("request_id"))
    response = _page(
        "web/error.html",
        status=error.status,
        client=client,
        error=error,
        crumbs=present.crumbs(config.service_prefix, "/"),
    )
    for key, value in error.headers.items():
        response.headers[key] = value
    return response


OFFSET_MAX = 10**9


class Listing:
    """What a namespace page lists: the query arguments of its URL, checked."""

    def __init__(self, config: Config) -> None:
        args = request.args
        self.default_limit = config.web_page_size
        self.after = args.get("after", "")
        self.contains = args.get("filter") or None
        self.sort = args.get("sort", "name")
        order = args.get("order", "asc")
        if self.sort not in SORTS:
            raise BadRequest(f"sort must be one of {', '.join(SORTS)}.")
        if order not in ("asc", "desc"):
            raise BadRequest("order must be asc or desc.")
        self.descending = order == "desc"
        self.limit = self._number("limit", config.web_page_size, 1, PAGE_LIMIT_MAX)
        self.offset = self._number("offset", 0, 0, OFFSET_MAX)
        if self.sort == "name" and self.offset:
            raise BadRequest("offset pages the orders other than by name; by name, use after.")
        if self.sort != "name" and self.after:
            raise BadRequest("after pages the order by name; in other orders, use offset.")
        if len(self.after) > config.max_name_length or (
            self.contains and len(self.contains) > 1024
        ):
            raise BadRequest("The paging or filter argument is too long.")

    @staticmethod
    def _number(field: str, default: int, least: int, most: int) -> int:
        text = request.args.get(field)
        if text is None:
            return default
        # ASCII digits only (str.isdigit() also takes '²', which int() refuses),
        # no more of them than ``most`` has (int() refuses thousands of digits)
        digits = text.lstrip("0") or "0"
        fits = text.isascii() and text.isdigit() and len(digits) <= len(str(most))
        if not fits or not least <= int(digits) <= most:
            raise BadRequest(f"{field} must be a whole number from {least} to {most}.")
        return int(digits)

    def query(self, **changes: Optional[str]) -> str:
        """``?...`` of this listing with ``changes`` (None drops an argument)."""
        arguments = {
            "after": self.after or None,
            "offset": str(self.offset) if self.offset else None,
            "filter": self.contains,
            "limit": str(self.limit) if self.limit != self.default_limit else None,
            "sort": self.sort if self.sort != "name" else None,
            "order": "desc" if self.descending else None,
        }
        arguments.update(changes)
        kept = [(k, v) for k, v in arguments.items() if v is not None]
        return "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in kept) if kept else ""

    def sort_links(self) -> dict[str, str]:
        """The link of each column header: its order, or the other direction if current."""
        links = {}
        for field in SORTS:
            desc = field == self.sort and not self.descending
            links[field] = self.query(
                after=None,
                offset=None,
                sort=field,  # explicit, so that the page knows a header was followed
                order="desc" if desc else None,
            )
        return links

    def next_query(self, page: NamespacePage) -> Optional[str]:
        if not (page.more and page.children):
            return None
        if self.sort == "name":
            return self.query(after=page.children[-1].name)
        return self.query(offset=str(self.offset + self.limit))


def _inherited(call: Call, entries: Iterable[InheritedAcl]) -> str:
    return json.dumps(
        [
            {"source": call.url(entry.source), "access": entry.access, "role": entry.role}
            for entry in entries
        ]
    )


class Pages:
    """The page hook of the REST layer (``state.pages``)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def namespace(self, call: Call) -> Optional[Response]:
        """The namespace page; None when the name is an object (its GET is its bytes)."""
        try:
            listing = Listing(self.config)
            page = call.model.browse_namespace(
                call.client,
                call.path.name,
                listing.after,
                listing.limit,
                listing.contains,
                listing.sort,
                listing.descending,
                listing.offset,
            )
        except HatracError as error:
            return error_page(error, call.client)
        if page is None:
            return None
        url = call.url(page.namespace.name)
        paged = bool(listing.after or listing.offset)
        return _page(
            "web/namespace.html",
            client=call.client,
            name=page.namespace.name,
            url=url,
            crumbs=present.crumbs(call.prefix, page.namespace.name),
            children=page.children,
            rights=page.rights,
            paged=paged,
            filter=listing.contains or "",
            sort=listing.sort,
            descending=listing.descending,
            sort_links=listing.sort_links(),
            next_url=listing.next_query(page),
            first_url=url + listing.query(after=None, offset=None) if paged else None,
            inherited_json=_inherited(call, page.inherited),
        )

    def error(self, call: Call, error: HatracError) -> Response:
        """The page of an error about a name (an anonymous 401 goes to the login page)."""
        return error_page(error, call.client)

    def versions(self, call: Call) -> Response:
        """The object page: versions, digests, metadata, links, and the editors."""
        try:
            page = call.model.object_page(call.client, call.path.name)
        except HatracError as error:
            return error_page(error, call.client)
        name = page.object.name
        return _page(
            "web/object.html",
            client=call.client,
            name=name,
            url=call.url(name),
            crumbs=present.crumbs(call.prefix, name),
            versions=page.versions,
            current=page.versions[0] if page.versions else None,
            rights=page.rights,
            inherited_json=_inherited(call, page.inherited),
        )


# -- the interface's own routes ------------------------------------------------
def static_file(filename: str) -> Response:
    """A CSS or JavaScript file of the interface (revalidated on each use)."""
    response = send_from_directory(STATIC, filename, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    return response


def _client():
    client = g.get("client")
    if client is None:
        client = _state().authenticate(request.environ)
        g.client = client
    return client


def account_page() -> Response:
    """Who am I, log out, API tokens (the page fills itself from ``/authn``)."""
    try:
        client = _client()
        if client.is_anonymous:
            raise Unauthenticated("Log in to see your account.")
    except HatracError as error:
        return error_page(error)
    prefix = _state().config.service_prefix
    return _page(
        "web/account.html",
        crumbs=present.crumbs(prefix, "/"),
        attributes=sorted(client.attributes),
    )


def account_names() -> Response:
    """The built-in users and groups, as suggestions for the ACL editor (logged-in only)."""
    client = _client()
    if client.is_anonymous:
        raise Unauthenticated("Log in to see the account names.")
    accounts = _state().accounts
    users = [user.name for user in accounts.users() if not user.disabled]
    from ..auth.accounts import GROUP_PREFIX

    groups = [GROUP_PREFIX + group[0] for group in accounts.groups()]
    response = Response(
        json.dumps({"users": users, "groups": groups}) + "\n", mimetype="application/json"
    )
    response.headers["Cache-Control"] = "no-store"
    return response

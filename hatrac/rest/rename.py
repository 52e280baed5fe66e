"""Rename (``POST /new`` with ``{"command": "rename_from", ...}``) and forwarders.

The body names the source object (``source_name``: its name after the
service prefix, as upstream reads it; see :func:`source_object_name`),
optionally the versions (``source_versions``, or ``versions`` as DERIVA sends
it) and ``copy_acls``. The answer is 201 with the new version URLs as a
uri-list.

A renamed-away version is a forwarder: GET and HEAD of it (and of its object,
while it is current) serve the version it became, with ``Content-Location``
and ``Location`` naming it (see :mod:`.names`); 409 once that was deleted.
Repeating a rename that was done answers 204.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from flask import Response

from ..errors import BadRequest
from . import Call, render
from .bodies import parse_json, read_small_body
from .query import flag

RENAME_BODY_LIMIT = 1024 * 1024


# the prefix DERIVA's rename_obj removes from source_name itself
DERIVA_PREFIX = "/hatrac"
# what requests (DERIVA's HTTP library) leaves bare in a URL it sends; it
# percent-encodes everything else as UTF-8 and keeps valid %XX escapes
_BARE_IN_URLS = "!#$&'()*+,/:;=?@[]~"
_NOT_AN_ESCAPE = re.compile("%(?![0-9A-Fa-f]{2})")


def as_sent_in_urls(path: str) -> str:
    """``path`` as requests would send it in a URL (its ``requote_uri``).

    DERIVA puts the path its caller gave in the URL, which requests encodes
    (``a b/é`` arrives as ``a%20b/%C3%A9``), and in ``source_name`` as it is:
    encoded the same way, both name the same object.
    """
    if _NOT_AN_ESCAPE.search(path):  # a stray '%': requests then encodes every '%'
        return quote(path, safe=_BARE_IN_URLS)
    return quote(path, safe=_BARE_IN_URLS + "%")


def source_object_name(prefix: str, value: str) -> str:
    """The name ``source_name`` means under the service ``prefix``.

    As upstream, ``source_name`` is the name after the service prefix. DERIVA
    removes a leading ``/hatrac`` itself, so under that prefix nothing more is
    removed (the object ``/hatrac/hatrac/x`` arrives as ``/hatrac/x``). Under
    another prefix DERIVA sends the whole path, so that prefix is removed once.
    Characters a URL cannot carry bare are read as DERIVA's URLs carry them.
    """
    path = as_sent_in_urls(value)
    if prefix and prefix != DERIVA_PREFIX and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :]
    return path


def _source_name(call: Call, value: str) -> str:
    path = source_object_name(call.prefix, value)
    if not path.startswith("/"):
        raise BadRequest("source_name must be an absolute object path such as /ns/obj.")
    parsed = call.state.parser.parse(path)
    if parsed.version is not None or parsed.subresource is not None or parsed.is_root:
        raise BadRequest("source_name must name an object (no :VERSION, no ;sub-resource).")
    return parsed.name


def rename_from(call: Call) -> Response:
    """POST on a name: only the rename_from command is known."""
    if call.path.version is not None:
        raise BadRequest("POST a rename to the new object name, not to a version.")
    body = parse_json(
        read_small_body(RENAME_BODY_LIMIT),
        'POST on a name takes a JSON object {"command": "rename_from", ...}.',
    )
    if not isinstance(body, dict) or body.get("command") != "rename_from":
        raise BadRequest('The only command POST on a name accepts is "rename_from".')
    known = {"command", "source_name", "source_versions", "versions", "copy_acls"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadRequest(f"Unknown rename field(s): {', '.join(unknown)}.")
    source = body.get("source_name")
    if not isinstance(source, str) or not source:
        raise BadRequest("source_name (the object to rename) is required.")
    versions = body.get("source_versions", body.get("versions"))
    if "source_versions" in body and "versions" in body and body["versions"] != versions:
        raise BadRequest("Give the versions once, as source_versions or versions.")
    if versions is not None and (
        not isinstance(versions, list) or not all(isinstance(v, str) and v for v in versions)
    ):
        raise BadRequest("source_versions must be a list of version ids.")
    copy_acls = body.get("copy_acls", False)
    if not isinstance(copy_acls, bool):
        raise BadRequest("copy_acls must be true or false.")
    created = call.model.rename_from(
        call.client,
        call.path.name,
        _source_name(call, source),
        versions,
        copy_acls,
        flag("parents"),
    )
    if not created:  # the same rename again: already done
        return render.no_content()
    urls = [call.url(v.name, v.version) for v in created]
    return render.created_list(urls)

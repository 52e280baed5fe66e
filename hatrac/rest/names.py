"""Namespaces, objects and versions: ``/name``, ``/name:VERSION``, ``/name;versions``.

Each handler follows one order: parse the request's headers, ask the model
(which authorizes), evaluate preconditions, render.
"""

from __future__ import annotations

from email.utils import formatdate
from functools import lru_cache
from typing import BinaryIO, Mapping, Optional

from flask import Response, request
from werkzeug.wsgi import wrap_file

from ..errors import (
    BadRequest,
    HatracError,
    NotImplementedHere,
    PayloadTooLarge,
    RangeNotSatisfiable,
)
from ..model.conditions import NotModified
from ..model.resources import Listing, ObjectVersion
from ..model.storage import read_blocks
from . import BODY_TAKEN, Call, by_method, register_family, render
from .body import body_stream
from .content_safety import NOSNIFF, on_download_origin, protect
from .headers import (
    MultiRange,
    content_disposition,
    parse_content_disposition,
    parse_digest,
    parse_preconditions,
    parse_range,
)
from .query import flag

NAMESPACE_TYPE = "application/x-hatrac-namespace"
READ_BLOCK = 1024 * 1024
# bodies up to this size are read into memory and sent with the response
SMALL_BODY = 64 * 1024


@lru_cache(maxsize=4096)
def http_date(seconds: int) -> str:
    """An HTTP date (whole seconds, as the header has them), formatted once per second."""
    return formatdate(seconds, usegmt=True)


def not_modified(etag: Optional[str]) -> Response:
    response = Response(status=304)
    response.headers["X-Content-Type-Options"] = NOSNIFF
    if etag:
        response.headers["ETag"] = etag
    return response


# -- reading -------------------------------------------------------------------
def get_name(call: Call) -> Response:
    """GET/HEAD of a namespace (its listing) or an object (its current version)."""
    pages = call.state.pages if call.state.pages is not None and render.prefers_html() else None
    if pages is not None:
        page = pages.namespace(call)  # the web interface's namespace page
        if page is not None:
            return page
    found = call.prefetched
    try:
        if found is None:
            found = call.model.read_name(call.client, call.path.name)
        elif isinstance(found, Exception):
            raise found  # the fast path's lookup refused it (rest/fast.py)
    except HatracError as error:
        if pages is None:
            raise
        # a page, as the refusal of a namespace or a missing name is: which kind of
        # name refused a browser must not show
        return pages.error(call, error)
    if isinstance(found, Listing):
        return render_listing(call, found)
    return render_followed(call, found[1])


def render_followed(call: Call, version: ObjectVersion) -> Response:
    """A version read through a name it may have been renamed away from."""
    response = render_version(call, version)
    moved = version.name != call.path.name or call.path.version not in (None, version.version)
    if moved and response.status_code < 300:
        # renamed away: served from where it went, as upstream; Content-Location
        # (upstream's tests) and Location (its docs) both say where
        response.headers["Location"] = response.headers["Content-Location"]
    return response


def render_listing(call: Call, listing: Listing) -> Response:
    if request.headers.get("Range"):
        raise NotImplementedHere("Range requests on a namespace are not supported.")
    try:
        parse_preconditions(request.headers).check(listing.etag, safe_method=True)
    except NotModified as unchanged:
        return not_modified(unchanged.etag)
    # a child is never the root: its URL is the service prefix + its name
    title = f"Index of {call.url(listing.namespace.name)}"
    return render.listing(listing.children, title, listing.etag, prefix=call.prefix)


def version_headers(call: Call, version: ObjectVersion) -> dict:
    headers = {
        "Content-Type": version.content_type or "application/octet-stream",
        "Content-Location": call.url(version.name, version.version),
        "ETag": version.etag,
        "Accept-Ranges": "bytes",
        "Last-Modified": http_date(int(version.created)),
    }
    if version.content_md5:
        headers["Content-MD5"] = version.content_md5
    if version.content_sha256:
        headers["Content-SHA256"] = version.content_sha256
    headers["Content-Disposition"] = content_disposition(version)
    # for active content types, content safety makes that an attachment
    return protect(headers, call.config, on_download_origin(call.config))


def get_version(call: Call) -> Response:
    """GET/HEAD of ``name:VERSION``."""
    _, version = call.model.get_version(call.client, call.path.name, call.path.version, follow=True)
    return render_followed(call, version)


def render_version(call: Call, version: ObjectVersion) -> Response:
    """The bytes (or just the headers, for HEAD) of a version."""
    headers = version_headers(call, version)
    try:
        parse_preconditions(request.headers).check(version.etag, safe_method=True)
    except NotModified:
        return not_modified(version.etag)

    status = 200
    start, length = 0, version.size
    range_header = request.headers.get("Range")
    if range_header and request.headers.get("If-Range") not in (None, version.etag):
        range_header = None  # If-Range names another version: send it whole
    try:
        wanted = parse_range(range_header, version.size)
    except MultiRange:
        raise NotImplementedHere("Multiple byte ranges in one request are not supported.")
    except ValueError:
        raise RangeNotSatisfiable(version.size) from None
    if wanted is not None and wanted != (0, version.size):
        start, length = wanted
        status = 206
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{version.size}"
        # the digests describe the whole object, not this part: a client checking
        # them would reject the body (upstream sends none on 206 either)
        headers.pop("Content-MD5", None)
        headers.pop("Content-SHA256", None)

    if call.method == "HEAD":
        response = Response(status=status, headers=headers)
        response.headers["Content-Length"] = str(length)
        return response

    body = call.model.storage.open_version(
        version,
        start,
        length,
        content_type=headers["Content-Type"],
        content_disposition=headers["Content-Disposition"],
    )
    if body.redirect is not None:
        response = Response(
            status=303,
            headers={"Location": body.redirect, "X-Content-Type-Options": NOSNIFF},
        )
        for key in ("Content-MD5", "Content-SHA256", "ETag", "Content-Location"):
            response.headers[key] = headers[key] if key in headers else ""
        return response
    if body.file is not None and length <= SMALL_BODY:
        # a small body costs less read here and written with the response than
        # handed to the server's sendfile (a selector and several system calls)
        try:
            iterable = [body.file.read(length)]
        finally:
            body.file.close()
    elif body.file is not None:
        # let the WSGI server send it (sendfile under gunicorn and mod_wsgi, both of
        # which stop at Content-Length); a server that reads it stops at the range's end
        iterable = wrap_file(request.environ, FileRange(body.file, length), READ_BLOCK)
    else:
        iterable = body.chunks
    response = Response(iterable, status=status, headers=headers, direct_passthrough=True)
    response.headers["Content-Length"] = str(length)
    if body.close is not None:
        response.call_on_close(body.close)
    return response


class FileRange:
    """``length`` bytes of an open file from its current position, for ``wsgi.file_wrapper``.

    ``read`` never goes past the range, so a server that iterates the wrapper
    sends exactly the range; ``fileno`` lets a server use ``sendfile`` from
    the file's position, which gunicorn and mod_wsgi limit to the response's
    Content-Length (test/e2e/test_http.py and test/deploy/test_apache.py
    check the bytes of ranges that end before the end of the file).
    """

    def __init__(self, handle: BinaryIO, length: int) -> None:
        self._handle = handle
        self._left = length

    def fileno(self) -> int:
        return self._handle.fileno()

    def tell(self) -> int:  # where mod_wsgi's sendfile starts
        return self._handle.tell()

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        wanted = self._left if size is None or size < 0 else min(size, self._left)
        data = self._handle.read(wanted)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()


def get_versions(call: Call) -> Response:
    if call.path.version is not None:
        raise BadRequest("A version has no ;versions sub-resource.")
    if call.path.arguments:
        raise BadRequest(";versions takes no arguments.")
    if call.state.pages is not None and render.prefers_html():
        return call.state.pages.versions(call)  # the web interface's object page
    found = call.model.list_versions(call.client, call.path.name)
    try:
        parse_preconditions(request.headers).check(found.etag, safe_method=True)
    except NotModified as unchanged:
        return not_modified(unchanged.etag)
    urls = [call.url(v.name, v.version) for v in found.versions]
    return render.listing(urls, f"Versions of {call.url(call.path.name)}", found.etag)


# -- writing --------------------------------------------------------------------
def request_length() -> Optional[int]:
    """The declared body length; None for chunked transfer coding."""
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        return None
    return request.content_length or 0


def object_metadata(headers: Optional[Mapping[str, str]] = None) -> dict:
    """Metadata of a new version from the request headers (or ``headers``), validated."""
    if headers is None:
        headers = request.headers
    metadata = {}
    content_type = headers.get("Content-Type")
    if content_type:
        metadata["content-type"] = content_type
    for field, header in (("content-md5", "Content-MD5"), ("content-sha256", "Content-SHA256")):
        value = headers.get(header)
        if value is not None:
            metadata[field] = parse_digest(field, value, header)
    disposition = headers.get("Content-Disposition")
    if disposition is not None:
        metadata["content-disposition"] = parse_content_disposition(disposition)
    return metadata


def put_name(call: Call) -> Response:
    """PUT: a new namespace, or a new version of an object."""
    if call.path.version is not None:  # routed here only for version_import_roles
        return put_object(call, flag("parents"), call.path.version)
    parents = flag("parents")
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type == NAMESPACE_TYPE:
        resolved = call.model.resolve(call.path.name)
        existing = resolved.target
        if existing is None or existing.deleted or not existing.is_object:
            conditions = parse_preconditions(request.headers)
            created = call.model.create_namespace(call.client, call.path.name, parents, conditions)
            return render.created(call.url(created.name))
        # an update of the object: a client that may not make one is refused before
        # its headers are read (413, 400), as it is on a name where there is none
        call.model.check_put_object(call.client, call.path.name, parents)
    return put_object(call, parents)


def put_object(call: Call, parents: bool, version_id: Optional[str] = None) -> Response:
    limit = call.config.max_request_payload_size
    length = request_length()
    if length is not None and length > limit:
        raise PayloadTooLarge(
            f"The body is {length} bytes; the limit of a single PUT is {limit} bytes "
            "(use a chunked upload job for larger objects)."
        )
    metadata = object_metadata()
    conditions = parse_preconditions(request.headers)
    blocks = read_blocks(body_stream(request.environ, length, request.stream), length, limit)
    if isinstance(call.prefetched, Exception):
        # the fast path (rest/fast_put.py) made this very call and met this error;
        # the body it read is given again, read here if the model had read it
        if request.environ.get(BODY_TAKEN):
            for _ in blocks:
                pass
        raise call.prefetched
    # without Expect: 100-continue the client sends its body at once: a small one
    # is then stored with its version in one transaction (see Hatrac.put_object)
    body_sent = request.headers.get("Expect", "").strip().lower() != "100-continue"
    version = call.model.put_object(
        call.client,
        call.path.name,
        blocks,
        metadata,
        parents,
        conditions,
        version_id,
        length=length,
        body_sent=body_sent,
    )
    url = call.url(version.name, version.version)
    return render.created(url, {"ETag": version.etag, "Content-Location": url})


def delete_name(call: Call) -> Response:
    conditions = parse_preconditions(request.headers)
    if call.path.version is not None:
        call.model.delete_version(call.client, call.path.name, call.path.version, conditions)
    else:
        call.model.delete_name(call.client, call.path.name, conditions)
    return render.no_content()


def post_name(call: Call) -> Response:
    """POST on an object name: the rename_from command (see :mod:`.rename`)."""
    from .rename import rename_from

    return rename_from(call)


def route_name(call: Call) -> Response:
    if call.path.version is not None:
        methods = {"GET": get_version, "DELETE": delete_name}
        if call.config.version_import_roles:  # versions are immutable, but for migrations
            methods["PUT"] = put_name
        return by_method(call, methods)
    return by_method(
        call, {"GET": get_name, "PUT": put_name, "POST": post_name, "DELETE": delete_name}
    )


def route_versions(call: Call) -> Response:
    return by_method(call, {"GET": get_versions})


register_family(None, route_name)
register_family("versions", route_versions)

"""Version metadata: ``/obj:V;metadata`` and ``/obj;metadata`` (the current version).

``GET`` of the collection answers a JSON object, ``GET .../FIELD`` the value
as text/plain (one line). ``PUT .../FIELD`` (text body) and ``DELETE
.../FIELD`` change one field (204). Every answer carries the metadata's ETag;
changes honour If-Match/If-None-Match. The model authorizes (read rights to
read, ownership and the ``manage_metadata`` firewall to change) and checks
digests against the stored bytes.
"""

from __future__ import annotations

from flask import Response, request

from ..errors import BadRequest, NotFound
from ..model.conditions import NotModified
from ..model.metadata import METADATA_FIELDS, field_value, metadata_etag
from . import Call, by_method, register_family, render
from .bodies import read_small_body
from .headers import parse_content_disposition, parse_digest, parse_preconditions
from .names import not_modified

METADATA_BODY_LIMIT = 64 * 1024


def _field(call: Call):
    return call.path.arguments[0] if call.path.arguments else None


def _known(field: str) -> str:
    if field not in METADATA_FIELDS:
        raise NotFound(f"{field!r} is not a metadata field; known: {', '.join(METADATA_FIELDS)}.")
    return field


def get_metadata(call: Call) -> Response:
    field = _field(call)
    if field is not None:
        _known(field)
    version = call.model.read_metadata(call.client, call.path.name, call.path.version)
    etag = metadata_etag(version)
    try:
        parse_preconditions(request.headers).check(etag, safe_method=True)
    except NotModified:
        return not_modified(etag)
    if field is None:
        return render.json_response(version.metadata(), etag=etag)
    value = field_value(version, field)
    if value is None:
        raise NotFound(f"The version has no {field}.")
    response = Response(value + "\n", mimetype="text/plain")
    response.headers["ETag"] = etag
    return response


def _value(field: str) -> str:
    try:
        text = read_small_body(METADATA_BODY_LIMIT).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadRequest("The metadata value must be UTF-8 text.") from None
    if not text:
        raise BadRequest(f"The new {field} is empty; DELETE the field to remove it.")
    if field in ("content-md5", "content-sha256"):
        return parse_digest(field, text, field)
    if field == "content-disposition":
        return parse_content_disposition(text)
    if len(text) > 1024 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise BadRequest("content-type must be a short single-line media type.")
    return text


def put_metadata(call: Call) -> Response:
    field = _field(call)
    if field is None:
        raise BadRequest("PUT one field: ;metadata/FIELD with the value as a text body.")
    value = _value(_known(field))
    conditions = parse_preconditions(request.headers)
    version = call.model.change_metadata(
        call.client, call.path.name, call.path.version, field, value, conditions
    )
    return render.no_content(etag=metadata_etag(version))


def delete_metadata(call: Call) -> Response:
    field = _field(call)
    if field is None:
        raise BadRequest("DELETE one field: ;metadata/FIELD.")
    conditions = parse_preconditions(request.headers)
    version = call.model.change_metadata(
        call.client, call.path.name, call.path.version, _known(field), None, conditions
    )
    return render.no_content(etag=metadata_etag(version))


def route_metadata(call: Call) -> Response:
    if len(call.path.arguments) > 1:
        raise BadRequest("Metadata URLs are ;metadata or ;metadata/FIELD.")
    if not call.path.arguments:
        return by_method(call, {"GET": get_metadata})
    return by_method(call, {"GET": get_metadata, "PUT": put_metadata, "DELETE": delete_metadata})


register_family("metadata", route_metadata)

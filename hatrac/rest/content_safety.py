"""Serving uploaded bytes so that a browser never runs them as the service's own page.

Anyone with ``create`` somewhere can store any bytes under any Content-Type.
A page of the service's origin could use a visitor's cookie against the API,
so every object and version response says:

* ``X-Content-Type-Options: nosniff``: the browser takes the type as given
  and never guesses HTML out of ``text/plain`` or ``application/octet-stream``;
* ``Content-Security-Policy: sandbox``: should a document render anyway, it
  gets an opaque origin with scripts, forms, popups and plugins disabled (no
  cookie, no API, no storage of the service). Images, media, downloads and
  ``fetch()`` of the bytes are unaffected: the policy governs a document,
  not bytes used by another page;
* for *active* types (:data:`ACTIVE_TYPES`, anything ``+xml``, the site's
  ``attachment_content_types``, and any Content-Type that does not parse as
  one ``type/subtype``): ``Content-Disposition: attachment`` (with the stored
  file name), so the browser saves the file rather than displays it.

On the optional ``download_origin`` (a second host name that never sees a
session cookie) objects are served to anonymous readers only, GET and HEAD
only, inline, under a sandbox that lets scripts run but keeps the page in an
opaque origin of its own (no cookies, storage or service workers of that
host). See docs/browsers.md.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Optional

from flask import request

from ..auth.base import is_https
from ..errors import Forbidden, NotFound

if TYPE_CHECKING:
    from ..config import Config

# types a browser may run script in, or render as a document that can
# (XML through an xml-stylesheet; multipart/x-mixed-replace carries HTML parts)
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/xsl",
        "application/xslt+xml",
        "application/javascript",
        "application/ecmascript",
        "application/x-javascript",
        "text/javascript",
        "text/ecmascript",
        "text/jscript",
        "application/x-shockwave-flash",
        "multipart/x-mixed-replace",
    }
)

NOSNIFF = "nosniff"
SANDBOX = "sandbox"
# on the download origin: scripts may run, but in an opaque origin of their own
DOWNLOAD_SANDBOX = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"\s*({_TOKEN})/({_TOKEN})\s*(;.*)?", re.S)


def media_type(content_type: Optional[str]) -> Optional[str]:
    """The lower-cased ``type/subtype`` of a Content-Type, or None if it is not one."""
    if not content_type:
        return None
    match = _MEDIA_TYPE.fullmatch(content_type)
    if match is None or "," in content_type:
        # a browser takes the last of several comma-separated types: never guess
        return None
    return f"{match.group(1)}/{match.group(2)}".lower()


def is_active(content_type: Optional[str], extra_types: Optional[list] = None) -> bool:
    """Whether a browser could run script in content of this type (or we cannot tell)."""
    if not content_type:
        return False  # served as application/octet-stream, with nosniff: a download
    essence = media_type(content_type)
    if essence is None:
        return True
    if essence in ACTIVE_TYPES or essence.endswith("+xml"):
        return True
    return essence in {kind.lower() for kind in extra_types or ()}


def attachment(stored_disposition: Optional[str]) -> str:
    """``attachment`` with the stored ``filename*=`` parameter, if there is one."""
    if stored_disposition:
        return f"attachment; {stored_disposition}"
    return "attachment"


def on_download_origin(config: Config) -> bool:
    """Whether this request came to the site's separate download origin."""
    origin = config.download_origin
    if not origin:
        return False
    scheme = "https" if is_https(request.environ, config.trust_forwarded_headers) else "http"
    host = (request.host or "").lower()
    for default in (":80", ":443"):
        if host.endswith(default) and default == (":443" if scheme == "https" else ":80"):
            host = host[: -len(default)]
    return f"{scheme}://{host}" == origin


def check_download_request(config: Config) -> None:
    """On the download origin: reads of the service's resources only, never a login."""
    if not on_download_origin(config):
        return
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        raise Forbidden(
            "The download origin serves reads only; send changes to the service's own origin."
        )
    prefix = config.service_prefix
    path = request.path
    if not (path == prefix or path.startswith(prefix + "/") or prefix == ""):
        raise NotFound("The download origin serves stored objects only.")


def protect(headers: dict, config: Config, download: bool) -> dict:
    """Add the protective headers to an object or version response's headers."""
    headers["X-Content-Type-Options"] = NOSNIFF
    headers["Content-Security-Policy"] = DOWNLOAD_SANDBOX if download else SANDBOX
    if not download and is_active(headers.get("Content-Type"), config.attachment_content_types):
        headers["Content-Disposition"] = attachment(headers.get("Content-Disposition"))
    return headers

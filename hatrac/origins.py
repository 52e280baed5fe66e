"""Web origins in the exact form browsers send them in the ``Origin`` header.

An origin is ``scheme://host[:port]``: scheme ``http`` or ``https``, a
lower-case host name or IP literal, a port only when it is not the scheme's
default, no path, no trailing slash, no user information. Browsers serialize
origins that way, so the configured lists (``cors_allowed_origins``,
``download_origin``) must be written that way too, and a request's Origin is
compared with them as an exact string: no case folding, no suffix or prefix
matching (``https://lab.example.org.evil.com`` is not
``https://lab.example.org``), and ``null`` never matches.
"""

from __future__ import annotations

import re
from typing import Optional

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])"
ORIGIN = re.compile(rf"(https?)://({_HOST})(?::([0-9]{{1,5}}))?")
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_problem(value: object) -> Optional[str]:
    """Why ``value`` is not an origin in browser form; None when it is one."""
    if not isinstance(value, str):
        return "is not a string"
    match = ORIGIN.fullmatch(value)
    if match is None:
        if value != value.lower() and ORIGIN.fullmatch(value.lower()):
            return "must be lower case, as browsers send it"
        if value.endswith("/") and ORIGIN.fullmatch(value.rstrip("/")):
            return "must not end with '/' (an origin has no path)"
        return "must have the form scheme://host[:port] with scheme http or https"
    scheme, _, port = match.groups()
    if port is not None:
        number = int(port)
        if not 0 < number < 65536 or port != str(number):
            return "has an invalid port"
        if number == DEFAULT_PORTS[scheme]:
            return f"must omit the default port {number} (browsers do)"
    return None


def is_origin(value: object) -> bool:
    """Whether ``value`` is an origin exactly as a browser would send it."""
    return origin_problem(value) is None

"""Raw request paths to resource references, and resource names back to URLs.

Hatrac URLs use ``/``, ``:`` and ``;`` as syntax when bare and as data when
percent-encoded, so parsing must happen on the raw, still-encoded path (WSGI
``RAW_URI``/``REQUEST_URI``), never on the decoded ``PATH_INFO``. We split on
the bare syntax characters first and only then decode each segment as UTF-8.

Names are kept in one canonical encoded form: each decoded segment quoted with
only the unreserved characters left bare, segments joined by ``/``. That form
is what the directory stores, what listings return, and what clients must send
back (other spellings of the same name are accepted and mean the same thing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional
from urllib.parse import quote, unquote_to_bytes

from .errors import BadRequest

ROOT = "/"

# RFC 3986 sub-delimiters and '@' have no meaning in Hatrac URLs; HTTP client
# libraries (requests, which the DERIVA SDK uses) leave them bare, so they are
# accepted bare as data in addition to the configured class.
_TOLERATED_BARE = "!$&'()*+,=@"

SUBRESOURCES = ("versions", "acl", "metadata", "upload")

# Version ids are opaque: ours are 26 Crockford base32 characters, but imported
# data keeps upstream's ids, which are 26 characters of RFC 4648 base32 or, on
# S3-backed sites, the S3 VersionId of whatever provider (AWS documents them as
# opaque strings of up to 1,024 bytes). A version segment is therefore checked
# only for what no URL can carry, and against this limit, in UTF-8 bytes.
MAX_VERSION_LENGTH = 1024
# parsed paths up to this length are remembered (PathParser.parse)
CACHED_PATH_LENGTH = 512


@dataclass(frozen=True)
class ResourcePath:
    """What a request path names: a name, an optional version and sub-resource."""

    segments: tuple[str, ...]
    version: Optional[str] = None
    subresource: Optional[str] = None
    arguments: tuple[str, ...] = ()
    trailing_slash: bool = False
    name: str = field(default=ROOT)

    @property
    def is_root(self) -> bool:
        return not self.segments


@lru_cache(maxsize=16)
def _segment_pattern(char_class: str) -> re.Pattern:
    bare = re.escape(_TOLERATED_BARE)
    return re.compile(rf"(?:[{bare}{char_class}]|%[0-9A-Fa-f]{{2}})*")


# a segment of only these characters is its own canonical spelling
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


def quote_segment(text: str) -> str:
    """Percent-encode one decoded segment in the canonical form.

    Segments a legacy parser let through (see ``PathParser(legacy_names=True)``)
    keep their bytes: non-UTF-8 bytes arrive surrogate-escaped, and the dot
    segments are spelled ``%2E`` so that no client normalizes them away.
    """
    if text in (".", ".."):
        return "%2E" * len(text)
    if _UNRESERVED.fullmatch(text):
        return text  # what quote() returns for it, without its work
    return quote(text.encode("utf-8", "surrogateescape"), safe="-_.~")


def canonical_name(segments: tuple[str, ...]) -> str:
    """The canonical encoded name of a sequence of decoded segments."""
    if not segments:
        return ROOT
    return "/" + "/".join(quote_segment(s) for s in segments)


def split_name(name: str) -> list[str]:
    """Canonical name -> the canonical names of the root and every ancestor, then itself."""
    if name == ROOT:
        return [ROOT]
    parts = name.split("/")[1:]
    return [ROOT] + ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def parent_name(name: str) -> str:
    """Canonical name of the parent namespace."""
    head = name.rsplit("/", 1)[0]
    return head or ROOT


def decode_segment(raw: str, what: str = "name segment") -> str:
    """Percent-decode one raw segment as UTF-8, refusing control characters."""
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"The {what} {raw!r} is not valid percent-encoded UTF-8.") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise BadRequest(f"The {what} {raw!r} contains a control character.")
    return text


class PathParser:
    """Parses raw request paths under one service's naming rules."""

    def __init__(
        self,
        allowed_char_class: str,
        max_segment_length: int,
        max_name_length: int,
        legacy_names: bool = False,
    ) -> None:
        try:
            self._segment_ok = _segment_pattern(allowed_char_class)
        except re.error as error:
            raise ValueError(f"allowed_url_char_class is not a valid class: {error}") from None
        self.max_segment_length = max_segment_length
        self.max_name_length = max_name_length
        # names imported from upstream Hatrac, which stored any escape: segments
        # that are not UTF-8, hold control characters or spell '.'/'..' encoded
        self.legacy_names = legacy_names
        # the paths clients ask for again and again, parsed once (a ResourcePath is
        # immutable; a path that is refused raises, and is never kept)
        self._parsed = lru_cache(maxsize=2048)(self._parse)

    def _name_segment(self, raw: str) -> str:
        if raw == "":
            raise BadRequest("Empty name segments ('//') are not allowed.")
        if not self._segment_ok.fullmatch(raw):
            raise BadRequest(
                f"The name segment {raw!r} contains a character that must be percent-encoded."
            )
        if raw in (".", ".."):
            raise BadRequest("The name segments '.' and '..' are not allowed.")
        if "%" not in raw and raw.isascii() and raw.isprintable():
            text = raw  # nothing escaped, no control character: decodes to itself
        elif self.legacy_names:
            text = unquote_to_bytes(raw).decode("utf-8", "surrogateescape")
        else:
            text = decode_segment(raw)
        if text in (".", "..") and not self.legacy_names:
            raise BadRequest("The name segments '.' and '..' are not allowed.")
        if len(text) > self.max_segment_length:
            raise BadRequest(
                f"A name segment is {len(text)} characters long; the limit is "
                f"{self.max_segment_length}."
            )
        return text

    def _version_segment(self, raw: str) -> str:
        """A version id: any non-empty text (no control characters) up to the limit."""
        if not self._segment_ok.fullmatch(raw):
            raise BadRequest(
                f"The version {raw!r} contains a character that must be percent-encoded."
            )
        text = decode_segment(raw, "version")
        if len(text.encode("utf-8")) > MAX_VERSION_LENGTH:
            raise BadRequest(
                f"A version id is longer than the limit of {MAX_VERSION_LENGTH} bytes."
            )
        return text

    def parse(self, raw_path: str) -> ResourcePath:
        """Parse the part of a raw path after the service prefix."""
        if len(raw_path) <= CACHED_PATH_LENGTH:
            return self._parsed(raw_path)
        return self._parse(raw_path)

    def _parse(self, raw_path: str) -> ResourcePath:
        if raw_path in ("", "/"):
            return ResourcePath(segments=())
        if not raw_path.startswith("/"):
            raise BadRequest("The resource path must begin with '/'.")
        name_part, semicolon, sub_part = raw_path.partition(";")
        if len(name_part) > 1 and name_part.endswith("/") and not name_part.endswith("//"):
            name_part = name_part[:-1]  # "/ns/" names the namespace "/ns"
        if name_part in ("", "/"):
            raw_segments: list[str] = []
        else:
            raw_segments = name_part[1:].split("/")
        version = None
        if raw_segments:
            for raw in raw_segments[:-1]:
                if ":" in raw:
                    raise BadRequest("A bare ':' may only separate an object name from a version.")
            last = raw_segments[-1]
            if ":" in last:
                last, _, raw_version = last.partition(":")
                if ":" in raw_version:
                    raise BadRequest("A name may carry only one bare ':' (its version).")
                if raw_version == "":
                    raise BadRequest("The version after ':' is empty.")
                version = self._version_segment(raw_version)
                raw_segments[-1] = last
        segments = tuple(self._name_segment(raw) for raw in raw_segments)
        if sum(len(s) + 1 for s in segments) > self.max_name_length:
            raise BadRequest(f"The name is longer than the limit of {self.max_name_length}.")
        if version is not None and not segments:
            raise BadRequest("The root namespace has no versions.")

        subresource = None
        arguments: tuple[str, ...] = ()
        trailing_slash = False
        if semicolon:
            head, slash, rest = sub_part.partition("/")
            if head not in SUBRESOURCES:
                raise BadRequest(
                    f"Unknown sub-resource ';{decode_segment(head, 'sub-resource')}'; known: "
                    + ", ".join(";" + s for s in SUBRESOURCES)
                )
            subresource = head
            if slash:
                parts = rest.split("/")
                if parts and parts[-1] == "":
                    trailing_slash = True
                    parts = parts[:-1]
                arguments = tuple(decode_segment(p, "sub-resource argument") for p in parts)
                if subresource == "acl" and len(arguments) > 2:
                    # a role containing bare '/' (clients should send %2F): keep it whole
                    arguments = (arguments[0], "/".join(arguments[1:]))
            if any(a == "" for a in arguments):
                raise BadRequest("Empty sub-resource arguments are not allowed.")
        return ResourcePath(
            segments=segments,
            version=version,
            subresource=subresource,
            arguments=arguments,
            trailing_slash=trailing_slash,
            name=canonical_name(segments),
        )


def resource_url(prefix: str, name: str, version: Optional[str] = None) -> str:
    """Absolute URL path of a name (and version) under the service prefix."""
    path = prefix + ("/" if name == ROOT else name)
    if version is not None:
        path += ":" + quote_segment(version)
    return path

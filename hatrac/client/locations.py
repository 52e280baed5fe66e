"""Where a command points: a local path, or a :class:`RemotePath` on a server.

A remote is written either as a URL (``https://host/hatrac/ns/obj:VERSION``,
its path taken as already percent-encoded, as the server's own URLs are) or
as ``REMOTE:/ns/obj`` with a remote named in ``remotes.conf``, whose path is
plain text: ``/`` separates names, a ``:`` in the last segment starts a
version id, and every other character (space, ``%``, non-ASCII) is part of
the name and encoded by the client. A name containing ``:`` or ``/`` itself
is written in the URL form (``%3A``, ``%2F``). Anything else is a local path.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional
from urllib.parse import quote, unquote, urlsplit


def encode_segment(text: str) -> str:
    """One name segment, percent-encoded the canonical way (only unreserved bare)."""
    return quote(text, safe="", encoding="utf-8", errors="strict")


def decode_segment(segment: str) -> str:
    return unquote(segment, encoding="utf-8", errors="strict")


@dataclass(frozen=True)
class RemotePath:
    """A resource on a server: ``origin`` (``scheme://host:port``), the encoded
    ``path`` with the service prefix (no version), and an optional ``version``."""

    origin: str
    path: str
    version: Optional[str] = None
    trailing_slash: bool = False

    @property
    def url(self) -> str:
        return self.origin + self.resource

    @property
    def resource(self) -> str:
        """The path with the version, as sent in a request line."""
        return self.path + (":" + self.version if self.version else "")

    @property
    def basename(self) -> str:
        """The decoded last segment (the object's or namespace's own name)."""
        return decode_segment(self.path.rstrip("/").rsplit("/", 1)[-1])

    def child(self, name: str) -> RemotePath:
        """The child called ``name`` (plain text, encoded here)."""
        return RemotePath(self.origin, self.path.rstrip("/") + "/" + encode_segment(name))

    def sub(self, suffix: str) -> str:
        """A sub-resource URL path, e.g. ``sub(';acl')``."""
        return self.resource + suffix

    def without_version(self) -> RemotePath:
        return replace(self, version=None)

    def display(self) -> str:
        return unquote(self.url)


def split_version(path: str) -> tuple[str, Optional[str]]:
    """``/p/obj:V`` -> ``('/p/obj', 'V')``: a bare ``:`` in the last segment."""
    head, _, last = path.rpartition("/")
    if ":" in last:
        name, _, version = last.partition(":")
        return head + "/" + name, version or None
    return path, None


def from_url(url: str) -> RemotePath:
    """A server URL (already encoded) as a :class:`RemotePath`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url}")
    path = parts.path or "/"
    trailing = path.endswith("/") and len(path) > 1
    path = path.rstrip("/") or "/"
    path, version = split_version(path)
    return RemotePath(f"{parts.scheme}://{parts.netloc}", path, version, trailing)


def join_url(base: str, text: str) -> RemotePath:
    """``base`` (a remote's URL) plus a plain-text path under it."""
    root = from_url(base)
    trailing = text.endswith("/")
    segments = [s for s in text.split("/") if s]
    version = None
    if segments and ":" in segments[-1]:
        segments[-1], _, version = segments[-1].partition(":")
        version = version or None
    encoded = "".join("/" + encode_segment(s) for s in segments)
    path = root.path.rstrip("/") + encoded
    return RemotePath(root.origin, path or "/", version, trailing and bool(segments))


def parse_location(text: str, remotes: dict[str, str]) -> Optional[RemotePath]:
    """A :class:`RemotePath` for a remote argument, or None for a local path."""
    if text.startswith(("http://", "https://")):
        return from_url(text)
    name, colon, rest = text.partition(":")
    if colon and name in remotes:
        return join_url(remotes[name], rest)
    return None


def rename_source_name(path: str) -> str:
    """The ``source_name`` of a rename for the object at URL ``path``.

    Servers read it after their service prefix, as upstream does. Like DERIVA's
    ``rename_obj``, this removes the usual prefix ``/hatrac`` and sends any other
    path whole (which this project's server accepts under another prefix).
    """
    if path.startswith("/hatrac/"):
        return path[len("/hatrac") :]
    return path


def relative_name(root: RemotePath, url_path: str) -> list[str]:
    """The decoded segments of ``url_path`` beneath ``root`` (for local file names)."""
    base = root.path.rstrip("/") + "/"
    if not url_path.startswith(base):
        raise ValueError(f"{url_path} is not beneath {root.path}")
    return [decode_segment(s) for s in url_path[len(base) :].split("/") if s]

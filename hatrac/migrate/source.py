"""A running Hatrac server (upstream's or ours) read through its REST API.

Only the public protocol is used, so any server that speaks it can be
copied: ``;acl`` tells a namespace from an object (and gives its ACLs),
listings and ``;versions`` give the tree, ``;metadata`` the stored fields of
each version, and a GET of ``name:VERSION`` its bytes, streamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Iterator, Optional
from urllib.parse import quote, urlsplit

import requests

from ..model.resources import NAMESPACE, OBJECT
from ..urls import ROOT, PathParser

BLOCK = 1024 * 1024
TIMEOUT = (10, 300)


class SourceError(Exception):
    """The source server refused or failed a request; the message says which and why."""


@dataclass
class SourceVersion:
    """One version as the source serves it."""

    name: str
    version: str
    acls: dict
    metadata: dict
    created: Optional[float]
    size: int


class RemoteServer:
    """One Hatrac service (``https://host/hatrac``) and the credentials to read it."""

    def __init__(
        self,
        service_url: str,
        session: Optional[requests.Session] = None,
        parser: Optional[PathParser] = None,
    ) -> None:
        parts = urlsplit(service_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SourceError(f"{service_url!r} is not an http(s) URL of a Hatrac service")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.prefix = parts.path or "/hatrac"
        self.session = session or requests.Session()
        # names as any upstream server could have bound them: wide character class
        self.parser = parser or PathParser(r"\x21-\x7e", 4096, 65536)

    # -- URLs and names ----------------------------------------------------------
    def url(self, name: str, suffix: str = "") -> str:
        return self.origin + self.prefix + ("/" if name == ROOT else name) + suffix

    def version_url(self, name: str, version: str, suffix: str = "") -> str:
        return self.url(name, ":" + quote(version, safe="") + suffix)

    def name_of(self, url: str) -> tuple[str, Optional[str]]:
        """Our canonical name (and version) of a URL the source returned."""
        path = urlsplit(url).path if "://" in url else url
        if not path.startswith(self.prefix):
            raise SourceError(f"the source listed {url!r}, outside its prefix {self.prefix}")
        parsed = self.parser.parse(path[len(self.prefix) :] or "/")
        return parsed.name, parsed.version

    # -- requests --------------------------------------------------------------
    def _get(self, url: str, accept: str = "application/json", stream: bool = False):
        try:
            reply = self.session.get(
                url, headers={"Accept": accept}, stream=stream, timeout=TIMEOUT
            )
        except requests.RequestException as error:
            raise SourceError(f"GET {url}: {error}") from None
        if reply.status_code != 200:
            reason = reply.text.strip()[:200] if not stream else ""
            reply.close()
            raise SourceError(f"GET {url}: {reply.status_code} {reason}".rstrip())
        return reply

    def _json(self, url: str):
        reply = self._get(url)
        try:
            return reply.json()
        except ValueError:
            raise SourceError(f"GET {url}: the answer is not JSON") from None

    def whoami(self) -> Optional[str]:
        """The client id the source sees for these credentials (None: anonymous)."""
        try:
            reply = self.session.get(self.origin + "/authn/session", timeout=TIMEOUT)
        except requests.RequestException:
            return None
        if reply.status_code != 200:
            return None
        try:
            return reply.json()["client"]["id"]
        except (ValueError, KeyError, TypeError):
            return None

    def acls(self, name: str) -> tuple[str, dict]:
        """The kind of ``name`` and its ACLs (only owners may read them)."""
        acls = self._json(self.url(name, ";acl"))
        if not isinstance(acls, dict):
            raise SourceError(f"{name};acl is not a JSON object")
        kind = NAMESPACE if "create" in acls or "subtree-create" in acls else OBJECT
        return kind, _clean(acls)

    def children(self, name: str) -> list[str]:
        listing = self._json(self.url(name))
        if not isinstance(listing, list):
            raise SourceError(f"the listing of {name} is not a JSON array")
        return [self.name_of(url)[0] for url in listing]

    def versions(self, name: str) -> list[str]:
        """Version ids of an object, oldest first."""
        listing = self._json(self.url(name, ";versions"))
        if not isinstance(listing, list):
            raise SourceError(f"the versions of {name} are not a JSON array")
        ids = [self.name_of(url)[1] for url in listing]
        ids.reverse()  # servers list newest first
        return [v for v in ids if v]

    def describe(self, name: str, version: str) -> SourceVersion:
        acls = _clean(self._json(self.version_url(name, version, ";acl")))
        metadata = self._json(self.version_url(name, version, ";metadata"))
        if not isinstance(metadata, dict):
            raise SourceError(f"{name}:{version};metadata is not a JSON object")
        reply = self.session.head(self.version_url(name, version), timeout=TIMEOUT)
        if reply.status_code != 200:
            raise SourceError(f"HEAD {name}:{version}: {reply.status_code}")
        created = None
        if reply.headers.get("Last-Modified"):
            try:
                created = parsedate_to_datetime(reply.headers["Last-Modified"]).timestamp()
            except (TypeError, ValueError):
                created = None
        size = int(reply.headers.get("Content-Length") or 0)
        return SourceVersion(name, version, acls, metadata, created, size)

    def content(self, name: str, version: str) -> Iterator[bytes]:
        """The bytes of a version, streamed; raises SourceError when cut short."""
        reply = self._get(self.version_url(name, version), accept="*/*", stream=True)
        expected = reply.headers.get("Content-Length")
        received = 0
        try:
            for block in reply.iter_content(BLOCK):
                received += len(block)
                yield block
        except requests.RequestException as error:
            raise SourceError(f"GET {name}:{version} was cut off: {error}") from None
        finally:
            reply.close()
        if expected is not None and int(expected) != received:
            raise SourceError(
                f"GET {name}:{version} announced {expected} bytes and sent {received}"
            )


def _clean(acls: dict) -> dict:
    """ACLs as we store them: non-empty lists of role strings, duplicates dropped."""
    return {
        access: list(dict.fromkeys(roles))
        for access, roles in acls.items()
        if isinstance(roles, list) and roles
    }

"""Conditional requests (If-Match / If-None-Match), as pure logic.

The REST layer parses the headers into :class:`Preconditions`; the model
evaluates them against the current ETag of the resource, inside the same
transaction as the change they guard, so a check and its update are atomic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import PreconditionFailed


class NotModified(Exception):
    """A GET/HEAD whose If-None-Match matched: answer 304."""

    def __init__(self, etag: Optional[str]) -> None:
        super().__init__("not modified")
        self.etag = etag


def _matches(tags: list[str], etag: Optional[str], weak: bool) -> bool:
    if etag is None:
        return False
    if "*" in tags:
        return True

    def strip(tag: str) -> str:
        return tag[2:] if weak and tag.startswith("W/") else tag

    return strip(etag) in {strip(tag) for tag in tags}


@dataclass(frozen=True)
class Preconditions:
    """Parsed If-Match / If-None-Match lists (None when the header is absent)."""

    if_match: Optional[list[str]] = None
    if_none_match: Optional[list[str]] = None

    @property
    def present(self) -> bool:
        return self.if_match is not None or self.if_none_match is not None

    def check(self, etag: Optional[str], safe_method: bool = False) -> None:
        """Raise 412 (or NotModified for GET/HEAD) when a condition is unmet.

        ``etag`` is None when the resource does not exist.
        """
        if self.if_match is not None and not _matches(self.if_match, etag, weak=False):
            raise PreconditionFailed("If-Match does not match the resource's current ETag.")
        if self.if_none_match is not None and _matches(self.if_none_match, etag, weak=True):
            if safe_method:
                raise NotModified(etag)
            raise PreconditionFailed("If-None-Match matches the resource's current ETag.")

    def check_exists(self, exists: bool) -> None:
        """:meth:`check` for a resource whose ETag the client may not learn: only ``*``
        can match it (``If-Match: *`` holds when it exists, ``If-None-Match: *`` when
        it does not), so an answer never tells whether a guessed ETag was right."""
        if self.if_match is not None and not (exists and "*" in self.if_match):
            raise PreconditionFailed("If-Match does not match the resource's current ETag.")
        if self.if_none_match is not None and exists and "*" in self.if_none_match:
            raise PreconditionFailed("If-None-Match matches the resource's current ETag.")


NO_CONDITIONS = Preconditions()

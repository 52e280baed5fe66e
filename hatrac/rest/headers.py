"""Request and response headers: digests, Content-Disposition, conditions, Range.

Each parser refuses malformed input with a 400 that says what was wrong.
:func:`content_disposition` is the one place that decides the
Content-Disposition an object response carries.
"""

from __future__ import annotations

import re
from typing import Mapping, Optional
from urllib.parse import unquote_to_bytes

from ..errors import BadRequest
from ..model.conditions import Preconditions
from ..model.metadata import DIGEST_SIZES, canonical_digest
from ..model.resources import ObjectVersion

_DISPOSITION = re.compile(r"filename\*=UTF-8''([A-Za-z0-9!#$&+.^_`|~%-]+)")


def parse_digest(field: str, value: str, label: str) -> str:
    """A digest header/field as canonical base64; hex input is accepted."""
    canonical = canonical_digest(field, value)
    if canonical is None:
        raise BadRequest(
            f"{label} must be the base64 (or hex) encoding of a {DIGEST_SIZES[field]}-byte "
            f"digest; got {value.strip()!r}."
        )
    return canonical


def parse_content_disposition(value: str) -> str:
    """Accept only ``filename*=UTF-8''NAME`` with a plain percent-encoded basename."""
    match = _DISPOSITION.fullmatch(value.strip())
    if not match:
        raise BadRequest(
            "Content-Disposition must have the form filename*=UTF-8''NAME with NAME "
            "percent-encoded."
        )
    try:
        filename = unquote_to_bytes(match.group(1)).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The Content-Disposition filename is not valid UTF-8.") from None
    if (
        not filename
        or "/" in filename
        or "\\" in filename
        or filename in (".", "..")
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in filename)
    ):
        raise BadRequest(
            "The Content-Disposition filename must be a plain file name (no '/', no control "
            "characters)."
        )
    return value.strip()


def content_disposition(version: ObjectVersion) -> str:
    """The Content-Disposition of a version's responses: the stored one, else (as
    upstream) ``filename*=UTF-8''`` and the object's last name segment, so that
    browsers and download tools save the file under its object name.

    The canonical name is percent-encoded with only unreserved characters
    bare, all of which RFC 8187 allows as they are.
    """
    if version.content_disposition:
        return version.content_disposition
    return "filename*=UTF-8''" + version.name.rsplit("/", 1)[-1]


def _tag_list(value: Optional[str]) -> Optional[list[str]]:
    if value is None:
        return None
    value = value.strip()
    if value == "*":
        return ["*"]
    # ETags may contain commas only inside quotes; ours never do
    return [tag.strip() for tag in value.split(",") if tag.strip()]


def parse_preconditions(headers: Mapping[str, str]) -> Preconditions:
    return Preconditions(
        if_match=_tag_list(headers.get("If-Match")),
        if_none_match=_tag_list(headers.get("If-None-Match")),
    )


class MultiRange(Exception):
    """A Range header asking for more than one range (upstream answers 501)."""


_RANGE = re.compile(r"\s*bytes\s*=\s*(.+)")
_ONE_RANGE = re.compile(r"\s*(\d*)\s*-\s*(\d*)\s*")


def parse_range(value: Optional[str], size: int) -> Optional[tuple[int, int]]:
    """``(start, length)`` for a single satisfiable byte range, else None.

    Returns None when there is no header or it is syntactically invalid (the
    request is then answered whole). Raises :class:`MultiRange` for several
    ranges and ``ValueError`` when the range is not satisfiable.
    """
    if not value:
        return None
    match = _RANGE.fullmatch(value)
    if not match:
        return None
    specs = match.group(1).split(",")
    bounds = []
    for spec in specs:
        one = _ONE_RANGE.fullmatch(spec)
        if one is None or (one.group(1) == "" and one.group(2) == ""):
            return None
        if one.group(1) and one.group(2) and int(one.group(2)) < int(one.group(1)):
            return None  # a range whose last byte is before its first is invalid (RFC 9110)
        bounds.append((one.group(1), one.group(2)))
    if len(bounds) > 1:
        raise MultiRange()
    first, last = bounds[0]
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise ValueError("unsatisfiable")
        start = max(0, size - suffix)
        return start, size - start
    start = int(first)
    if start >= size:
        raise ValueError("unsatisfiable")
    end = int(last) if last else size - 1
    end = min(end, size - 1)
    return start, end - start + 1

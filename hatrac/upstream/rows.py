"""Upstream's row encodings turned into ours: names, metadata, ACLs, rename records.

Pure functions over values read from upstream's tables; each returns what to
store and the problems found, so that nothing is changed or dropped silently.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Optional
from urllib.parse import quote, unquote_to_bytes

from ..model.resources import ACCESS_MODES, NAMESPACE, OBJECT

KINDS = {0: NAMESPACE, 1: OBJECT}
METADATA_KEYS = ("content-type", "content-disposition", "content-md5", "content-sha256")
DIGEST_BYTES = {"content-md5": 16, "content-sha256": 32}


def canonical_segment(raw: str) -> tuple[str, Optional[str]]:
    """Our canonical spelling of one stored segment, and why our URLs refuse it (if so).

    Upstream stores names as the client spelled them: escapes kept with their
    hex case, some characters bare. We decode to bytes and re-encode with only
    the unreserved characters bare, so ``%c3%a9``, ``%C3%A9`` and ``é`` are one
    name. Bytes that are not UTF-8 keep their escapes, so no name is lost.
    """
    data = unquote_to_bytes(raw)
    reason = None
    if raw == "":
        reason = "an empty segment"
    try:
        text = data.decode("utf-8")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            reason = "a control character"
    except UnicodeDecodeError:
        reason = "bytes that are not UTF-8"
    if data in (b".", b".."):
        reason = f"the segment {data.decode()!r}"
        return "%2E" * len(data), reason
    return quote(data, safe="-_.~"), reason


def canonical_name(stored: str) -> tuple[str, Optional[str]]:
    """Our canonical name for an upstream ``name`` value, and a refusal reason or None."""
    if stored == "/":
        return "/", None
    if not stored.startswith("/"):
        return "", "it does not begin with '/'"
    reasons = []
    segments = []
    for raw in stored[1:].split("/"):
        segment, reason = canonical_segment(raw)
        segments.append(segment)
        if reason:
            reasons.append(reason)
    return "/" + "/".join(segments), ("; ".join(reasons) or None)


def parent_of(name: str) -> str:
    head = name.rsplit("/", 1)[0]
    return head or "/"


def acls(kind: str, arrays: dict[str, Optional[list]]) -> tuple[dict, list[str]]:
    """Our ACL dict from upstream's arrays (NULL and {} both empty), and problems.

    Role strings are kept verbatim (duplicates dropped, order kept). An array
    in a column the kind has no ACL for cannot be represented: it is reported.
    """
    valid = ACCESS_MODES[kind]
    result: dict[str, list[str]] = {}
    problems = []
    for mode, roles in arrays.items():
        if not roles:
            continue
        if mode not in valid:
            problems.append(f"ACL '{mode}' is not one a {kind} has; roles {roles!r} not kept")
            continue
        kept = list(dict.fromkeys(roles))
        odd = [r for r in kept if r is None or r == "" or any(ord(c) < 0x20 for c in r)]
        if odd:
            problems.append(f"ACL '{mode}' has odd role string(s) {odd!r}; kept verbatim")
            kept = [r for r in kept if r is not None]
        result[mode] = kept
    return result, problems


def _digest(key: str, value: Any) -> tuple[Optional[str], Optional[str]]:
    """Upstream's lower-case hex digest as our base64, or a problem."""
    if not isinstance(value, str):
        return None, f"{key} is not a string ({value!r}); not kept"
    try:
        raw = binascii.unhexlify(value.strip())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != DIGEST_BYTES[key]:
        return None, f"{key} {value!r} is not {DIGEST_BYTES[key]} bytes of hex; not kept"
    return base64.b64encode(raw).decode("ascii"), None


def metadata(
    stored: Optional[str], legacy_type: Optional[str], legacy_md5: Optional[str]
) -> tuple[dict, list[str]]:
    """Our metadata fields from upstream's ``metadata`` JSON (or pre-2016 columns)."""
    problems = []
    if stored is None:
        fields: dict = {}
        if legacy_type is not None:
            fields["content-type"] = legacy_type
        if legacy_md5 is not None:
            fields["content-md5"] = legacy_md5
    else:
        try:
            fields = json.loads(stored)
        except ValueError:
            return {}, [f"metadata is not JSON ({stored[:80]!r}); not kept"]
        if not isinstance(fields, dict):
            return {}, [f"metadata is not a JSON object ({stored[:80]!r}); not kept"]
    result = {}
    for key, value in fields.items():
        if key not in METADATA_KEYS:
            problems.append(f"unknown metadata key {key!r} = {value!r}; not kept")
            continue
        if value is None:
            continue
        if key in DIGEST_BYTES:
            value, problem = _digest(key, value)
            if problem:
                problems.append(problem)
            if value is None:
                continue
        elif not isinstance(value, str):
            problems.append(f"{key} is not a string ({value!r}); not kept")
            continue
        result[key] = value
    return result, problems


def aux(stored: Optional[str]) -> tuple[dict, list[str]]:
    """Upstream's ``version.aux`` JSON (NULL: empty), and problems."""
    if stored is None:
        return {}, []
    try:
        value = json.loads(stored)
    except ValueError:
        return {}, [f"aux is not JSON ({stored[:80]!r}); ignored"]
    if value is None:
        return {}, []
    if not isinstance(value, dict):
        return {}, [f"aux is not a JSON object ({stored[:80]!r}); ignored"]
    known = {"rename_to", "hname", "hversion", "version", "url"}
    problems = [f"unknown aux key {key!r}; ignored" for key in value if key not in known]
    rename = value.get("rename_to")
    if rename is not None and not (
        isinstance(rename, list) and len(rename) == 2 and all(isinstance(x, str) for x in rename)
    ):
        problems.append(f"aux.rename_to {rename!r} is not [name, version]; ignored")
        value = {k: v for k, v in value.items() if k != "rename_to"}
    return value, problems

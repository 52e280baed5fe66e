"""How the pages show things: names as people read them, sizes, times, breadcrumbs.

Names arrive in canonical encoded form (``/a/b%2Fc``); a label is the
decoded last segment, so ``%2F`` shows as ``/`` inside one name and
``<script>`` shows as text (the templates escape every value).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Optional
from urllib.parse import unquote

from ..urls import ROOT, resource_url, split_name


@dataclass
class Crumb:
    """One ancestor link of the breadcrumbs."""

    label: str
    url: str


def label(name: str) -> str:
    """The decoded last segment of a canonical name (the root: ``/``)."""
    if name == ROOT:
        return "/"
    return unquote(name.rsplit("/", 1)[1])


def crumbs(prefix: str, name: str) -> list[Crumb]:
    """Links to the root and every ancestor, then the name itself."""
    root_label = prefix.strip("/") or "/"
    return [
        Crumb(root_label if part == ROOT else label(part), resource_url(prefix, part))
        for part in split_name(name)
    ]


def size(value: Optional[int]) -> str:
    """A byte count as people read it (``1.5 MiB``)."""
    if value is None:
        return ""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{value} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"  # not reached


def timestamp(seconds: Optional[float]) -> str:
    """UTC time in ISO 8601 to the second (``2026-12-01T10:16:12Z``)."""
    if seconds is None:
        return ""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

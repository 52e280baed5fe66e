"""Query parameters of a request: boolean flags such as ``?parents=true``."""

from __future__ import annotations

from flask import request

from ..errors import BadRequest


def flag(name: str) -> bool:
    """A boolean query parameter (``?parents=true``)."""
    value = request.args.get(name, "false").strip().lower()
    if value in ("true", "1", "yes", "on", ""):
        return value != ""
    if value in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"The query parameter {name} must be true or false, not {value!r}.")

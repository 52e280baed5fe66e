"""Fixtures of the web interface's tests: the pages depend on the database, not the storage."""

from __future__ import annotations

import pytest


@pytest.fixture(
    params=[("sqlite", "filesystem"), ("postgres", "filesystem")], ids=["sqlite", "postgres"]
)
def backends(request) -> tuple[str, str]:
    return request.param

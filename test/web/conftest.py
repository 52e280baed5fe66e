"""Fixtures of the web interface's tests: the pages depend on the database, not
the storage; the browser tests share one live service per module and run some
tests in both Chromium and Firefox (:func:`any_context`).
"""

from __future__ import annotations

import pytest
from webhelpers import start_web_server


@pytest.fixture(
    params=[("sqlite", "filesystem"), ("postgres", "filesystem")], ids=["sqlite", "postgres"]
)
def backends(request) -> tuple[str, str]:
    return request.param


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One live service (alice, bob, the group lab) for a test module."""
    server = start_web_server(tmp_path_factory.mktemp("web"))
    yield server
    server.stop()


@pytest.fixture(params=["chromium", "firefox"])
def any_context(request):
    """A fresh browser context, once in Chromium and once in Firefox."""
    fixture = "browser_context" if request.param == "chromium" else "firefox_context"
    return request.getfixturevalue(fixture)

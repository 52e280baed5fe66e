"""The browser harness itself (test/browser.py): Chromium drives a live server.

A smoke test that the system Chromium starts under Playwright, loads a page
from a real gunicorn server, runs the page's JavaScript against the API and
reports console errors.
"""

from __future__ import annotations

import pytest
import requests
from browser import watch_console
from servers import GunicornServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("browser-smoke")
    config = {
        "data_directory": str(directory / "data"),
        "root_acls": {"owner": ["admin"], "create": ["*"], "read": ["*"], "subtree-read": ["*"]},
    }
    server = GunicornServer(config, directory, workers=1, threads=2).start()
    yield server
    server.stop()


def test_chromium_loads_a_listing_and_calls_the_api(server, browser_context):
    page = browser_context.new_page()
    errors = watch_console(page)
    reply = page.goto(server.url + "/hatrac/")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/html")
    stored = page.evaluate(
        """async () => {
            const put = await fetch('/hatrac/smoke', {method: 'PUT', body: 'hello',
                                    headers: {'Content-Type': 'text/plain'}});
            const get = await fetch('/hatrac/smoke');
            return [put.status, get.status, await get.text()];
        }"""
    )
    assert stored == [201, 200, "hello"]
    assert requests.get(server.url + "/hatrac/smoke").text == "hello"
    page.evaluate("console.error('seen by the harness')")
    assert errors == ["console: seen by the harness"]

"""A real browser for the tests: Debian's Chromium driven by Playwright.

Playwright's own browser download cannot work here, so the tests launch the
system binary (``/usr/bin/chromium``, installed by ``scripts/test.sh``) and
never call ``playwright install``. Starting Chromium costs about a second,
so a test module shares one browser (the module-scoped :func:`chromium`
fixture) and each test opens its own context (cookies, storage) and pages
with :func:`browser_context`, which are closed after the test.

:func:`watch_console` collects a page's console errors and uncaught
exceptions, so a test can assert that an allowed cross-origin call left no
complaint in the console.

The fixtures are registered in ``test/conftest.py``, so a test module only
asks for them::

    from browser import watch_console

    def test_something(browser_context):
        page = browser_context.new_page()
        errors = watch_console(page)
        page.goto(url)
        assert errors == []
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest

CHROMIUM = os.environ.get("HATRAC_TEST_CHROMIUM", "/usr/bin/chromium")

# quiet, deterministic, no network of its own: no updates, sync, QUIC or GPU;
# the sandbox needs user namespaces that containers and root often lack
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--metrics-recording-only",
    "--password-store=basic",
]


def launch_chromium(playwright):
    """Debian's Chromium, headless, through a started Playwright.

    ``launch`` gives the browser a fresh temporary profile (user-data
    directory) of its own, removed when it closes: nothing is shared with
    another run or a user's profile.
    """
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(
            f"{CHROMIUM} not found; install Debian's 'chromium' package (scripts/test.sh does)"
        )
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000
    )


def watch_console(page) -> list[str]:
    """A list that fills with the page's console errors and uncaught exceptions."""
    errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: errors.append(f"exception: {error}"))
    return errors


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One headless Chromium for the whole test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_context(chromium) -> Iterator[object]:
    """A fresh browser context (no cookies, no cache) for one test."""
    context = chromium.new_context()
    context.set_default_timeout(15_000)
    # the service has no favicon; the browser's own request for one would
    # otherwise log a 404 in every page's console
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    try:
        yield context
    finally:
        context.close()

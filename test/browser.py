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
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest
from servers import GunicornServer

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
    """A list that fills with the page's console errors and uncaught exceptions.

    The browser's own request for ``/favicon.ico`` (which the service does not
    serve) is not counted. (It is not answered by ``context.route`` instead:
    routing requests through Playwright makes Chromium skip CORS preflights.)
    """
    errors: list[str] = []

    def on_console(message) -> None:
        if message.type != "error":
            return
        if (message.location or {}).get("url", "").endswith("/favicon.ico"):
            return
        errors.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"exception: {error}"))
    return errors


def start_service(
    directory: Path,
    users: Optional[dict] = None,
    workers: int = 1,
    settings_for: Optional[Callable[[str], dict]] = None,
    **settings,
) -> GunicornServer:
    """A live gunicorn service on SQLite in ``directory`` with built-in ``users``.

    ``users`` maps user names to passwords (created before the server starts,
    with cheap password hashes); ``settings`` override config fields, and
    ``settings_for(url)`` those that depend on the server's own URL (its
    origin). The caller stops the server.
    """
    from hatrac.auth.accounts import Accounts
    from hatrac.config import load_config
    from hatrac.model.directory import open_directory

    config = {
        "data_directory": str(directory / "data"),
        "root_acls": {"owner": ["admin"], "create": ["*"], "read": ["*"]},
        "password_hash_rounds": 1000,
        "access_log": False,
    }
    config.update(settings)
    if users:
        loaded = load_config(dict(config))  # data_directory is absolute: same files
        store = open_directory(loaded.database_dsn)
        store.initialize(loaded.root_acls)
        accounts = Accounts(store, loaded)
        for name, password in users.items():
            accounts.add_user(name, password)
        accounts.close()
        store.close()
    server = GunicornServer(config, directory, workers=workers, threads=4)
    if settings_for is not None:
        config.update(settings_for(server.url))
    return server.start()


class StaticSite:
    """A second web origin on loopback: serves fixed pages, as a lab's app server would.

    ``pages`` maps paths (``/app.html``) to ``(content type, bytes)``; anything
    else is 404. Runs in a thread of the test process; :meth:`stop` ends it.
    """

    def __init__(self, pages: dict[str, tuple[str, bytes]], host: str = "127.0.0.1"):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server API)
                page = site.pages.get(self.path.split("?", 1)[0])
                if page is None:
                    self.send_error(404)
                    return
                kind, body = page
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.pages = dict(pages)
        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[object]:
    """Playwright, started once for a test module (its browsers share it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def chromium(playwright_driver) -> Iterator[object]:
    """One headless Chromium for the whole test module."""
    browser = launch_chromium(playwright_driver)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def browser_context(chromium) -> Iterator[object]:
    """A fresh browser context (no cookies, no cache) for one test."""
    context = chromium.new_context()
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        context.close()


def navigate_to_download(page, url: str):
    """Open ``url`` in ``page`` expecting the browser to save it: the Download."""
    from playwright.sync_api import Error

    with page.expect_download(timeout=15_000) as started:
        try:
            page.goto(url)
        except Error as error:  # a navigation that becomes a download "fails"
            if "Download is starting" not in str(error):
                raise
    return started.value

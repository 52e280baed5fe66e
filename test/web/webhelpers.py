"""Helpers of the web interface's browser tests: a live service with two users,
API sessions, logged-in pages, and the screenshots shown in docs/web.md.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import requests
from servers import GunicornServer

from hatrac.auth.accounts import Accounts
from hatrac.config import load_config
from hatrac.model.directory import open_directory

NS = {"Content-Type": "application/x-hatrac-namespace"}
PASSWORD = "correct horse"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"
CHUNK_URL = re.compile(r";upload/[^/]+/(\d+)$")


def screenshot(page, name: str) -> None:
    """Save a small PNG for the docs when HATRAC_WEB_SCREENSHOTS is set (from Chromium)."""
    if page.context.browser.browser_type.name != "chromium":
        return  # the docs show one browser; the Firefox runs of a test keep them
    if os.environ.get("HATRAC_WEB_SCREENSHOTS"):
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"web-{name}.png"))


def start_web_server(directory: Path, **settings) -> GunicornServer:
    """gunicorn on SQLite in ``directory`` with users alice and bob and the group lab."""
    config = {
        "data_directory": str(directory / "data"),
        "root_acls": {"owner": ["admin"], "create": ["*"], "read": ["*"]},
        "password_hash_rounds": 1000,
    }
    config.update(settings)
    loaded = load_config(dict(config))
    accounts_directory = open_directory(loaded.database_dsn)
    accounts_directory.initialize(loaded.root_acls)
    accounts = Accounts(accounts_directory, loaded)
    for user in ("alice", "bob"):
        accounts.add_user(user, PASSWORD, display_name=user.title())
    accounts.add_group("lab")
    accounts_directory.close()
    return GunicornServer(config, directory, workers=2, threads=4).start()


class UserSession(requests.Session):
    """A logged-in API session; paths are taken relative to the server."""

    def __init__(self, base: str):
        super().__init__()
        self.base = base

    def request(self, method, url, *args, **kwargs):
        if url.startswith("/"):
            url = self.base + url
        return super().request(method, url, *args, **kwargs)


def session_of(base: str, user: str) -> requests.Session:
    """An API session logged in as ``user``."""
    session = UserSession(base)
    reply = session.post("/authn/session", data={"username": user, "password": PASSWORD})
    assert reply.status_code == 201, reply.text
    return session


def alice_with_namespace(base: str, prefix: str) -> tuple[requests.Session, str]:
    """Alice's API session and a namespace she just made (``prefix`` made unique)."""
    alice = session_of(base, "alice")
    ns = unique(prefix)
    alice.put(ns, headers=NS)
    return alice, ns


def logged_in(context, base: str, user: str = "alice"):
    """A page of ``context`` logged in as ``user`` (the session cookie set by /authn/session)."""
    reply = context.request.post(
        base + "/authn/session", form={"username": user, "password": PASSWORD}
    )
    assert reply.status == 201, reply.text()
    page = context.new_page()
    page.set_viewport_size({"width": 1000, "height": 640})
    return page


def open_page(page, url: str):
    """Go to ``url`` and wait until the page's script has set it up."""
    reply = page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    return reply


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}{time.time_ns()}"


def chunk_requests(page) -> list[int]:
    """A list that fills with the numbers of the chunks ``page`` sends (PUTs)."""
    sent: list[int] = []

    def seen(request) -> None:
        found = CHUNK_URL.search(request.url)
        if found and request.method == "PUT":
            sent.append(int(found.group(1)))

    page.on("request", seen)
    return sent

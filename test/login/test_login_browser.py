"""Logging in from a browser, in Chromium against a live server.

An anonymous visit to the (private) listing shows the 401 page; its link
leads to the login page, which logs in through /authn/session and returns to
the listing. A wrong password stays on the page with a message; the logout
page ends the session. The console stays clean.
"""

from __future__ import annotations

import pytest
from browser import start_service, watch_console


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_service(
        tmp_path_factory.mktemp("login"),
        {"ana": "ana pw"},
        root_acls={"owner": ["admin"], "read": ["ana"]},
    )
    yield server
    server.stop()


def test_without_the_web_interface_the_401_page_links_to_the_login_page(chromium, tmp_path):
    server = start_service(tmp_path, root_acls={"owner": ["admin"]}, web_interface=False)
    context = chromium.new_context()
    try:
        page = context.new_page()
        assert page.goto(server.url + "/hatrac/").status == 401
        page.click("#login")
        page.wait_for_selector("#login-form")
        assert page.url == server.url + "/authn/login?referrer=%2Fhatrac%2F"
    finally:
        context.close()
        server.stop()


def test_the_login_page_logs_in_and_returns_to_the_listing(browser_context, server):
    page = browser_context.new_page()
    errors = watch_console(page)
    # the web interface sends an anonymous visitor of a private page to the login page
    page.goto(server.url + "/hatrac/")
    page.wait_for_selector("#login-form")
    assert page.url == server.url + "/authn/login?referrer=%2Fhatrac%2F"
    assert errors == []

    page.fill("#username", "ana")
    page.fill("#password", "wrong")
    page.click("#login-button")
    page.wait_for_selector("#login-message:not([hidden])")
    assert "wrong password" in page.inner_text("#login-message")
    assert page.url.startswith(server.url + "/authn/login")
    errors.clear()  # the 401 of the wrong password is logged by the browser

    page.fill("#password", "ana pw")
    page.click("#login-button")
    page.wait_for_url(server.url + "/hatrac/", wait_until="domcontentloaded")
    assert page.url == server.url + "/hatrac/"
    session = page.evaluate("async () => (await (await fetch('/authn/session')).json()).client.id")
    assert session == "ana"
    assert errors == []

    page.goto(server.url + "/authn/logout?referrer=/hatrac/")
    page.click("#logout-button")
    # back to the (private) listing, which sends the now anonymous visitor to log in
    page.wait_for_url(server.url + "/authn/login?referrer=%2Fhatrac%2F")
    status = page.evaluate("async () => (await fetch('/authn/session')).status")
    assert status == 404

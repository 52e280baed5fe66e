"""The web interface in a real browser: Debian's Chromium through Playwright
(test/browser.py), one browser for the module, against one live gunicorn; the
tests that take ``any_context`` run in Debian's Firefox ESR too (test/firefox.py).

Each test logs in as a person would (the session cookie of /authn/session),
uses the pages, and checks the result through the HTTP API. With
HATRAC_WEB_SCREENSHOTS=1 the tests also save the screenshots shown in
docs/web.md (docs/img/web-*.png). Uploads that resume, fail or are cancelled
are in test_web_uploads.py.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import requests
from browser import watch_console
from webhelpers import (
    CHUNK_URL,
    NS,
    PASSWORD,
    alice_with_namespace,
    logged_in,
    open_page,
    screenshot,
    session_of,
    unique,
)


def test_browse_three_levels_with_breadcrumbs_sort_and_filter(server, any_context):
    base = server.url
    alice = session_of(base, "alice")
    top = unique("/hatrac/browse")
    assert alice.put(top + "/level1/level2?parents=true", headers=NS).status_code == 201
    alice.put(top + "/level1/level2/small.txt", data=b"a", headers={"Content-Type": "text/plain"})
    alice.put(top + "/level1/level2/big.bin", data=b"b" * 5000)
    alice.put(top + "/level1/level2/zeta", headers=NS)
    page = logged_in(any_context, base)
    errors = watch_console(page)
    open_page(page, base + top)
    assert page.locator("#whoami").inner_text() == "Alice"
    page.click("text=level1")
    page.wait_for_url(base + top + "/level1")
    page.click("td.name >> text=level2")
    page.wait_for_url(base + top + "/level1/level2")
    page.wait_for_selector("body[data-ready='1']")
    names = page.locator("#children tbody td.name")
    assert names.all_inner_texts() == ["big.bin", "small.txt", "zeta"]
    assert page.locator("#children tbody tr").first.locator("td").nth(2).inner_text() == "4.9 KiB"
    page.click("th[data-sort=size] a")  # ascending: the namespace (no size) first
    page.wait_for_selector("th[data-sort=size][aria-sort=ascending]")
    assert names.all_inner_texts() == ["zeta", "small.txt", "big.bin"]
    page.click("th[data-sort=size] a")
    page.wait_for_selector("th[data-sort=size][aria-sort=descending]")
    assert names.all_inner_texts() == ["big.bin", "small.txt", "zeta"]
    page.fill("#filter", "sm")  # filters the rows on the page, with no request
    assert page.locator("#children tbody tr:not([hidden])").count() == 1
    page.fill("#filter", "")
    screenshot(page, "namespace")
    page.set_viewport_size({"width": 390, "height": 640})  # a phone's width
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "phone")
    page.set_viewport_size({"width": 1000, "height": 640})
    crumbs = page.locator(".crumbs a")
    assert crumbs.all_inner_texts()[-3:] == [top.rsplit("/", 1)[1], "level1", "level2"]
    crumbs.nth(crumbs.count() - 3).click()
    page.wait_for_url(base + top)
    page.click("text=level1")
    page.wait_for_url(base + top + "/level1")
    page.goto(base + top + "/level1/level2/small.txt;versions")
    assert page.locator("h1").inner_text().strip() == "small.txt"
    assert errors == []


def test_upload_small_and_large_files_with_progress(server, any_context, tmp_path):
    base = server.url
    alice, ns = alice_with_namespace(base, "/hatrac/up")
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(1024))
    large = tmp_path / "large.bin"
    large.write_bytes(os.urandom(40 * 1024 * 1024))
    page = logged_in(any_context, base)
    errors = watch_console(page)
    open_page(page, base + ns)
    flying, most, chunk_requests = set(), [0], []

    def started(request):
        found = CHUNK_URL.search(request.url)
        if found and request.method == "PUT":
            chunk_requests.append(int(found.group(1)))
            flying.add(request)
            most[0] = max(most[0], len(flying))

    page.on("request", started)
    page.on("requestfinished", lambda request: flying.discard(request))
    page.on("requestfailed", lambda request: flying.discard(request))
    page.evaluate(
        """() => {
            window.progressSeen = [];
            const list = document.getElementById('upload-list');
            new MutationObserver(() => {
                for (const bar of list.querySelectorAll('progress')) {
                    const target = bar.closest('li').dataset.target;
                    window.progressSeen.push([target, bar.value, bar.max]);
                }
            }).observe(list, {subtree: true, attributes: true, childList: true});
        }"""
    )
    page.set_input_files("#pick-files", [str(small), str(large)])
    # listed, in progress or (Firefox is quick here) already done: "x of 40.0 MiB"
    # may never be on screen; progressSeen above records every step either way
    page.locator("li.upload[data-size-text='40.0 MiB']").wait_for(timeout=60_000)
    screenshot(page, "upload")
    # (no wait_for_function: the page's CSP forbids the eval it uses)
    page.locator("li.upload[data-state='done']").nth(1).wait_for(timeout=60_000)
    assert page.locator("#overall").evaluate("bar => bar.value === bar.max")
    # the new objects are listed without a reload
    assert page.locator("#children td.name").all_inner_texts() == ["small.bin", "large.bin"]
    seen = page.evaluate("window.progressSeen")
    large_name = ns[len("/hatrac") :] + "/large.bin"
    fractions = [value / maximum for target, value, maximum in seen if target == large_name]
    assert any(0 < f < 1 for f in fractions) and fractions[-1] == 1
    assert most[0] >= 2, "chunks were sent one at a time"
    assert sorted(chunk_requests) == [0, 1, 2, 3, 4]
    for path in (small, large):
        reply = alice.get(base + ns + "/" + path.name)
        assert reply.content == path.read_bytes()
        expected = base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()
        assert reply.headers["Content-MD5"] == expected
    assert errors == []


def test_acl_editor_takes_effect_for_another_user(server, browser_context):
    base = server.url
    alice = session_of(base, "alice")
    bob = session_of(base, "bob")
    ns = unique("/hatrac/shared")
    alice.put(ns, headers=NS)
    alice.put(ns + "/note.txt", data=b"for bob")
    assert bob.get(base + ns + "/note.txt").status_code == 403
    page = logged_in(browser_context, base)
    errors = watch_console(page)
    open_page(page, base + ns)
    page.click("#show-acl")
    row = page.locator("#acl tr[data-access='subtree-read']")
    row.locator("input").focus()  # the built-in accounts are offered as suggestions
    page.locator("#account-names option[value='bob']").wait_for(state="attached")
    assert page.locator("#account-names option[value='g:lab']").count() == 1
    row.locator("input").fill("bob")
    row.locator("button[type=submit]").click()
    page.wait_for_selector("#acl tr[data-access='subtree-read'] .role.own[data-role='bob']")
    screenshot(page, "acl")
    assert bob.get(base + ns + "/note.txt").content == b"for bob"
    # inherited entries show on the object's editor, with their source
    page.goto(base + ns + "/note.txt;versions")
    page.wait_for_selector("body[data-ready='1']")
    page.click("#show-acl")
    inherited = page.locator("#acl tr[data-access='read'] .role.inherited")
    assert "bob" in inherited.inner_text() and ns in inherited.inner_text()
    # an unknown name is warned about; removing bob takes effect too
    page.goto(base + ns)
    page.wait_for_selector("body[data-ready='1']")
    page.click("#show-acl")
    row = page.locator("#acl tr[data-access='read']")
    row.locator("input").fill("nobody-here")
    row.locator("button[type=submit]").click()
    page.wait_for_selector("#acl tr[data-access='read'] .role.own[data-role='nobody-here']")
    assert "not a built-in account" in page.locator("#messages").inner_text()
    page.click("#acl tr[data-access='subtree-read'] .role.own[data-role='bob'] button")
    page.wait_for_selector(
        "#acl tr[data-access='subtree-read'] .role.own[data-role='bob']", state="detached"
    )
    assert bob.get(base + ns + "/note.txt").status_code == 403
    # bob's own view: a readable 403 page with the reason and the request id
    bob_page = browser_context.browser.new_context().new_page()
    bob_page.context.request.post(
        base + "/authn/session", form={"username": "bob", "password": PASSWORD}
    )
    reply = bob_page.goto(base + ns)
    assert reply.status == 403
    assert "not granted" in bob_page.locator(".reason").inner_text()
    assert reply.headers["x-request-id"] in bob_page.locator(".request-id").inner_text()
    bob_page.context.close()
    assert errors == []


def test_delete_with_confirmation(server, browser_context):
    base = server.url
    alice, ns = alice_with_namespace(base, "/hatrac/del")
    alice.put(ns + "/doomed", data=b"1,2\n", headers={"Content-Type": "text/csv"})
    alice.put(ns + "/doomed", data=b"3,4\n", headers={"Content-Type": "text/csv"})
    page = logged_in(browser_context, base)
    open_page(page, base + ns + "/doomed;versions")
    screenshot(page, "object")
    assert page.locator(".version-card").count() == 2
    page.locator(".version-card").nth(1).locator(".delete-version").click()
    page.click("dialog button[value=no]")  # cancelled: nothing happens
    assert len(alice.get(base + ns + "/doomed;versions").json()) == 2
    page.locator(".version-card").nth(1).locator(".delete-version").click()
    page.click("dialog button[value=yes]")
    page.locator(".version-card").nth(1).wait_for(state="detached")
    assert len(alice.get(base + ns + "/doomed;versions").json()) == 1
    page.click("#delete-here")
    page.click("dialog button[value=yes]")
    page.wait_for_url(base + ns)
    assert alice.get(base + ns + "/doomed").status_code == 404


def test_hostile_names_render_inert_and_link_correctly(server, any_context):
    base = server.url
    alice, ns = alice_with_namespace(base, "/hatrac/names")
    script = "%3Cscript%3Ealert(1)%3C%2Fscript%3E"
    assert alice.put(base + ns + "/" + script, data=b"evil").status_code == 201
    assert alice.put(base + ns + "/a%2Fb", headers=NS).status_code == 201
    page = logged_in(any_context, base)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors = watch_console(page)
    open_page(page, base + ns)
    assert page.locator("td.name").all_inner_texts() == ["<script>alert(1)</script>", "a/b"]
    page.click("td.name >> text=<script>alert(1)</script>")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("h1").inner_text().strip() == "<script>alert(1)</script>"
    assert page.url.endswith("/%3Cscript%3Ealert%281%29%3C%2Fscript%3E;versions")
    with page.expect_download() as download:
        page.click("a:text('Download current')")
    assert Path(download.value.path()).read_bytes() == b"evil"
    open_page(page, base + ns)
    page.click("td.name >> text=a/b")
    page.wait_for_url(base + ns + "/a%2Fb")
    assert page.locator(".crumbs li").last.inner_text() == "a/b"
    assert dialogs == [] and errors == []


def test_account_page_tokens(server, browser_context):
    base = server.url
    page = logged_in(browser_context, base)
    errors = watch_console(page)
    open_page(page, base + "/hatrac/")
    page.click("#whoami")
    page.wait_for_selector("body[data-page='account'][data-ready='1']")
    assert page.locator("#identity").inner_text() == "alice"
    page.fill("#token-description", "laptop script")
    page.click("#new-token button[type=submit]")
    token = page.locator("#token-value").inner_text()
    page.wait_for_selector("#tokens tbody tr")
    screenshot(page, "account")
    assert "laptop script" in page.locator("#tokens tbody").inner_text()
    headers = {"Authorization": f"Bearer {token}"}
    probe = requests.get(base + "/authn/session", headers=headers)
    assert probe.json()["client"]["id"] == "alice"
    page.click("#tokens tbody tr button")
    page.wait_for_selector("#tokens tbody tr", state="detached")
    assert requests.get(base + "/authn/session", headers=headers).status_code in (401, 404)
    page.click("#logout")
    page.wait_for_selector("#login")
    assert errors == []


def test_metadata_copy_links_rename_and_new_namespace(server, browser_context):
    base = server.url
    alice, ns = alice_with_namespace(base, "/hatrac/meta")
    created = alice.put(ns + "/data.csv", data=b"a,b\n", headers={"Content-Type": "text/plain"})
    version = created.headers["Location"].rsplit(":", 1)[1]
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = logged_in(browser_context, base)
    errors = watch_console(page)
    open_page(page, base + ns + "/data.csv;versions")
    # copy links: the current URL and the version-pinned one
    page.click("button.copy:text('Copy link to this version')")
    assert page.evaluate("() => navigator.clipboard.readText()") == (
        f"{base}{ns}/data.csv:{version}"
    )
    page.click(".toolbar button.copy:text-is('Copy link')")
    assert page.evaluate("() => navigator.clipboard.readText()") == f"{base}{ns}/data.csv"
    # edit metadata (keyboard only: Enter submits)
    page.click(".version-card .edit-meta")
    page.fill("dd[data-field='content-type'] input", "text/csv")
    page.press("dd[data-field='content-type'] input", "Enter")
    page.wait_for_selector("dd[data-field='content-type']:text-is('text/csv')")
    page.fill("dd[data-field='content-disposition'] input", "bad disposition")
    page.press("dd[data-field='content-disposition'] input", "Enter")
    page.wait_for_selector("#messages .message.error")
    assert "400" in page.locator("#messages .message.error").inner_text()
    assert alice.head(base + ns + "/data.csv").headers["Content-Type"].startswith("text/csv")
    # rename: the object moves, parents made
    page.click("#rename")
    page.fill("dialog input", f"{ns[len('/hatrac') :]}/moved/data 2.csv")
    page.click("dialog button[value=yes]")
    page.wait_for_url(base + ns + "/moved/data%202.csv;versions")
    assert alice.get(base + ns + "/moved/data%202.csv").content == b"a,b\n"
    # a new namespace with parents, from the namespace page
    open_page(page, base + ns)
    page.click("#new-namespace")
    page.fill("dialog input", "x/y/z")
    page.keyboard.press("Enter")
    page.wait_for_selector("#children tr[data-label='x']", timeout=30_000)
    assert alice.get(base + ns + "/x/y/z", headers={"Accept": "application/json"}).json() == []
    # the keyboard sorts too
    page.focus("th[data-sort=name] a")
    page.keyboard.press("Enter")
    page.wait_for_selector("th[data-sort=name][aria-sort=descending]")
    # the one console line is the browser's own note of the refused disposition
    assert len(errors) == 1 and "400" in errors[0]


def test_anonymous_visitor_logs_in_and_returns(server, browser_context):
    base = server.url
    alice = session_of(base, "alice")
    ns = unique("/hatrac/private")
    alice.put(ns + "/inner?parents=true", headers=NS)  # owned by alice, read by no one else
    page = browser_context.new_page()
    page.set_viewport_size({"width": 1000, "height": 640})
    errors = watch_console(page)
    target = base + ns + "/inner?filter=x"
    page.goto(target)  # the page needs a login: the browser lands on the login page
    assert page.url.startswith(base + "/authn/login?referrer=")
    screenshot(page, "login")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(target)
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#whoami").inner_text() == "Alice"
    assert page.locator("h1").inner_text().strip() == "inner"
    assert errors == []


FOCUSED = "() => { const e = document.activeElement; return e.id || e.textContent.trim(); }"


def tab_until(page, wanted: str, most: int = 20) -> list[str]:
    """Press Tab until the focused element's id or text is ``wanted``; what was passed."""
    passed = []
    for _ in range(most):
        page.keyboard.press("Tab")
        passed.append(page.evaluate(FOCUSED))
        if passed[-1] == wanted:
            return passed
    raise AssertionError(f"Tab never reached {wanted!r}: {passed}")


def test_keyboard_use_of_the_table(server, any_context):
    base = server.url
    alice = session_of(base, "alice")
    ns = unique("/hatrac/keys")
    alice.put(ns + "/alpha?parents=true", headers=NS)
    alice.put(ns + "/beta.txt", data=b"bb", headers={"Content-Type": "text/plain"})
    alice.put(ns + "/gamma.txt", data=b"g")
    page = logged_in(any_context, base)
    errors = watch_console(page)
    open_page(page, base + ns)
    names = page.locator("#children tbody td.name")
    # the filter: typing hides rows, Enter asks the server
    page.focus("#filter")
    page.keyboard.type("ta")
    page.keyboard.press("Enter")
    page.wait_for_url(base + ns + "?filter=ta")
    page.wait_for_selector("body[data-ready='1']")
    assert names.all_inner_texts() == ["beta.txt"]
    open_page(page, base + ns)
    # from the filter, Tab reaches every control, then the column headers
    page.focus("#filter")
    passed = tab_until(page, "Name")
    assert passed[:4] == ["new-namespace", "Upload files", "Upload folder", "show-acl"]
    page.keyboard.press("Enter")  # the server sorts; the focus comes back to the header
    page.wait_for_selector("th[data-sort=name][aria-sort=descending]")
    assert names.all_inner_texts() == ["gamma.txt", "beta.txt", "alpha"]
    page.wait_for_selector("th[data-sort=name] a:focus")
    page.keyboard.press("Enter")
    page.wait_for_url(base + ns + "?sort=name")
    page.wait_for_selector("th[data-sort=name] a:focus")
    assert names.all_inner_texts() == ["alpha", "beta.txt", "gamma.txt"]
    tab_until(page, "Size")
    page.keyboard.press("Enter")
    page.wait_for_selector("th[data-sort=size][aria-sort=ascending] a:focus")
    assert names.all_inner_texts() == ["alpha", "gamma.txt", "beta.txt"]
    # then into the rows: Enter on a name opens it
    tab_until(page, "alpha")
    page.keyboard.press("Enter")
    page.wait_for_url(base + ns + "/alpha")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("h1").inner_text().strip() == "alpha"
    assert errors == []


def test_the_pages_digests_match_pythons(server, any_context):
    # MD5 and SHA-256 of digest.js, fed in uneven pieces, at the lengths where
    # padding changes (55/56/63/64 bytes) and over several chunks' worth of blocks
    page = any_context.new_page()
    open_page(page, server.url + "/hatrac/")
    found = page.evaluate(
        """async () => {
            const m = await import('/hatrac/;web/static/digest.js');
            const data = new Uint8Array(300000);
            for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 9)) & 255;
            const out = [];
            for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 300000]) {
                const piece = data.subarray(0, n), md5 = new m.MD5(), sha = new m.SHA256();
                for (let o = 0; o < n; o += 4099) {
                    md5.update(piece.subarray(o, o + 4099));
                    sha.update(piece.subarray(o, o + 4099));
                }
                out.push([n, m.base64(md5.digest()), m.base64(sha.digest()), m.md5Base64(piece)]);
            }
            return out;
        }"""
    )
    data = bytes((i * 7 + (i >> 9)) & 255 for i in range(300000))
    for n, md5, sha, whole in found:
        expected = base64.b64encode(hashlib.md5(data[:n]).digest()).decode()
        assert md5 == whole == expected, n
        assert sha == base64.b64encode(hashlib.sha256(data[:n]).digest()).decode(), n

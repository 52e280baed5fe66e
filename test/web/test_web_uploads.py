"""Uploads in the browser beyond one page's memory: a resume in a fresh browser
context (no local storage) from the server's list of the user's jobs, and a
folder chosen through the picker (Debian's Chromium through Playwright).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from urllib.parse import quote

from browser import watch_console
from webhelpers import NS, chunk_requests, logged_in, open_page, session_of, unique

CHUNK = 8 * 1024 * 1024  # the page's chunk size (upload.js)
JSON = {"Accept": "application/json"}


def declare_job(session, url: str, size: int, **digests) -> str:
    """An upload job of ``session`` for ``url`` with the page's chunk size; its URL."""
    spec = {"chunk-length": CHUNK, "content-length": size, **digests}
    reply = session.post(url + ";upload", json=spec)
    assert reply.status_code == 201, reply.text
    return reply.text.strip()


def test_resume_in_a_fresh_context_from_the_servers_job_list(server, chromium, tmp_path):
    base = server.url
    alice = session_of(base, "alice")
    ns = unique("/hatrac/again")
    alice.put(ns, headers=NS)
    data = os.urandom(2 * CHUNK + 1)  # three chunks, the last one of one byte
    source = tmp_path / "again.bin"
    source.write_bytes(data)
    target = base + ns + "/again.bin"
    first = chromium.new_context()
    page = logged_in(first, base)
    open_page(page, base + ns)
    # the connection drops on every attempt at chunk 2: the upload stops there
    page.route(re.compile(r";upload/[^/]+/2$"), lambda route: route.abort("connectionreset"))
    page.set_input_files("#pick-files", str(source))
    page.wait_for_selector("li.upload[data-state='failed']", timeout=60_000)
    job = page.locator("li.upload").get_attribute("data-job")
    assert alice.get(base + job).json()["chunks-received"] == [0, 1]
    first.close()
    # jobs of the same user for the same target and size whose declared digest
    # is not this file's (or is not declared) are never resumed
    other = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    wrong_digest = declare_job(alice, target, len(data), **{"content-sha256": other})
    no_digest = declare_job(alice, target, len(data))
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    wrong_md5 = declare_job(
        alice,
        target,
        len(data),
        **{"content-sha256": sha, "content-md5": base64.b64encode(b"x" * 16).decode()},
    )
    assert len(alice.get(target + ";upload").json()) == 4

    second = chromium.new_context()  # no cookies, no local storage of the first
    try:
        page = logged_in(second, base)
        open_page(page, base + ns)
        assert page.locator("#resumable").is_hidden()  # this browser remembers nothing
        sent = chunk_requests(page)
        page.set_input_files("#pick-files", str(source))
        page.wait_for_selector("li.upload[data-state='done']", timeout=60_000)
        assert sorted(sent) == [2]
        assert page.locator("li.upload").get_attribute("data-resumed") == "2"
        assert page.locator("li.upload").get_attribute("data-job") == job
    finally:
        second.close()
    stored = alice.get(target)
    assert stored.headers["Content-MD5"] == md5
    assert hashlib.md5(stored.content).digest() == hashlib.md5(data).digest()
    assert alice.get(base + job).status_code == 404  # the job was consumed
    for decoy in (wrong_digest, no_digest, wrong_md5):  # untouched
        assert alice.get(base + decoy).json()["chunks-received"] == []


def test_a_folder_chosen_through_the_picker(server, browser_context, tmp_path):
    base = server.url
    alice = session_of(base, "alice")
    ns = unique("/hatrac/folder")
    alice.put(ns, headers=NS)
    top = tmp_path / "my folder"
    files = {
        "a b.txt": b"top level",
        "sub dir/ünï cödé.txt": "non-ASCII ✓".encode(),
        "sub dir/deeper/x & y.bin": os.urandom(3000),
    }
    for relative, body in files.items():
        path = top / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    page = logged_in(browser_context, base)
    errors = watch_console(page)
    open_page(page, base + ns)
    page.set_input_files("#pick-folder", str(top))  # a real directory, as the picker gives it
    page.locator("li.upload[data-state='done']").nth(len(files) - 1).wait_for(timeout=60_000)
    assert page.locator("li.upload[data-state='done']").count() == len(files)
    for relative, body in files.items():
        url = base + ns + "/" + quote("my folder/" + relative)
        assert alice.get(url).content == body, relative
    assert alice.get(base + ns + "/my%20folder/sub%20dir/deeper", headers=JSON).json() == [
        ns + "/my%20folder/sub%20dir/deeper/x%20%26%20y.bin"
    ]
    # the folder is listed without a reload, and its link opens it
    page.click("td.name >> text=my folder")
    page.wait_for_url(base + ns + "/my%20folder")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#children td.name").all_inner_texts() == ["a b.txt", "sub dir"]
    assert errors == []

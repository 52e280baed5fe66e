"""Uploads in the browser beyond a plain one (Debian's Chromium through Playwright,
one browser and one live gunicorn for the module): a reload mid-upload that
sends only the missing chunks, and a resume in a fresh browser context (no
local storage) from the server's list of the user's jobs; a folder chosen
through the picker, files dropped; two tabs uploading one file to one name; a
finalization refused because another client made a chunk missing; refusals
(a name too long, a file over the limit, a session that ended) and a
cancelled upload.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from urllib.parse import quote

from browser import watch_console
from webhelpers import (
    CHUNK_URL,
    alice_with_namespace,
    chunk_requests,
    logged_in,
    open_page,
)

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
    alice, ns = alice_with_namespace(base, "/hatrac/again")
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
    alice, ns = alice_with_namespace(base, "/hatrac/folder")
    top = tmp_path / "my folder"
    files = {
        "a b.txt": b"top level",
        "sub dir/ünï cödé.txt": "non-ASCII ✓".encode(),
        "sub dir/deeper/x & y.bin": os.urandom(3000),
        # sent by an upload job, alone in a folder not made yet: the page asks
        # for jobs to resume before the job's ?parents=true makes the folder
        "new/big.bin": os.urandom(2 * CHUNK + 1),
    }
    for relative, body in files.items():
        path = top / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    page = logged_in(browser_context, base)
    errors = watch_console(page)
    refused = []
    page.on(
        "response",
        lambda response: (
            refused.append(f"{response.status} {response.request.method} {response.url}")
            if response.status >= 400
            else None
        ),
    )
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
    assert page.locator("#children td.name").all_inner_texts() == ["a b.txt", "new", "sub dir"]
    assert errors == [] and refused == []


def _two_tabs(server, browser_context, tmp_path):
    """(base, alice's session, a new namespace, a file's bytes, the file, two tabs of
    one browser on the namespace's page, the first logged in as alice)."""
    base = server.url
    alice, ns = alice_with_namespace(base, "/hatrac/tabs")
    data = os.urandom(2 * CHUNK + 1)
    source = tmp_path / "same.bin"
    source.write_bytes(data)
    first = logged_in(browser_context, base)
    second = browser_context.new_page()
    open_page(first, base + ns)
    open_page(second, base + ns)
    return base, alice, ns, data, source, first, second


def test_two_tabs_uploading_one_file_to_one_name(server, browser_context, tmp_path):
    # both tabs start at once: whichever looks for a job to resume second finds
    # the other's, which that tab is sending, and makes its own
    base, alice, ns, data, source, first, second = _two_tabs(server, browser_context, tmp_path)
    first.set_input_files("#pick-files", str(source))
    second.set_input_files("#pick-files", str(source))
    for page in (first, second):
        _wait_for_upload_end(page)
    _two_whole_versions(alice, base + ns + "/same.bin", data, first, second)


def test_a_tab_leaves_a_job_another_tab_is_sending_to_it(server, browser_context, tmp_path):
    base, alice, ns, data, source, first, second = _two_tabs(server, browser_context, tmp_path)
    # the first tab's chunks wait (a slow network) until the second tab is done
    held = []
    first.route(CHUNK_URL, lambda route: held.append(route))
    first.set_input_files("#pick-files", str(source))
    first.locator("li.upload[data-job]").wait_for(timeout=60_000)
    job = first.locator("li.upload").get_attribute("data-job")
    assert alice.get(base + ns + "/same.bin;upload").json() == [job]  # open, no chunk yet
    second.set_input_files("#pick-files", str(source))
    _wait_for_upload_end(second)
    assert second.locator("li.upload").get_attribute("data-resumed") is None
    assert held, "the first tab sent no chunk"
    for route in held:
        route.continue_()
    first.unroute(CHUNK_URL)
    _wait_for_upload_end(first)
    _two_whole_versions(alice, base + ns + "/same.bin", data, first, second)


def test_a_chunk_made_missing_by_another_client_is_sent_again(server, browser_context, tmp_path):
    # another client (e.g. another browser resuming the job) resends a chunk this
    # page stored, and fails; the server counts it missing, so the page's
    # finalization is refused (409) and the page sends the chunk again. The page
    # runs without the Web Locks API, as a page that is not a secure context does
    browser_context.add_init_script("delete Navigator.prototype.locks")
    base = server.url
    alice, ns = alice_with_namespace(base, "/hatrac/again")
    data = os.urandom(2 * CHUNK + 1)
    source = tmp_path / "again.bin"
    source.write_bytes(data)
    page = logged_in(browser_context, base)
    errors = watch_console(page)
    open_page(page, base + ns)
    assert page.evaluate("navigator.locks === undefined")
    finalizations = []

    def before_finalizing(route):
        if route.request.method == "POST" and not finalizations:
            job = route.request.url[len(base) :]
            bad_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
            resent = alice.put(
                job + "/1", data=data[CHUNK : 2 * CHUNK], headers={"Content-MD5": bad_md5}
            )
            assert resent.status_code == 400, resent.text
            assert alice.get(job).json()["chunks-received"] == [0, 2]
        if route.request.method == "POST":
            finalizations.append(route.request.url)
        route.continue_()

    page.route(re.compile(r";upload/[^/]+$"), before_finalizing)
    sent = chunk_requests(page)
    page.set_input_files("#pick-files", str(source))
    _wait_for_upload_end(page)
    assert len(finalizations) == 2
    assert sorted(sent) == [0, 1, 1, 2]
    assert page.locator("li.upload").get_attribute("data-resent") == "1"
    versions = alice.get(base + ns + "/again.bin;versions").json()
    assert len(versions) == 1
    assert hashlib.sha256(alice.get(base + versions[0]).content).digest() == (
        hashlib.sha256(data).digest()
    )
    # the refused finalization is in the console as a failed request, nothing else
    assert [e for e in errors if "409" not in e] == []


def _two_whole_versions(session, url: str, data: bytes, *pages) -> None:
    """Each page sent its own job, and each job made a whole version of ``data``."""
    jobs = {page.locator("li.upload").get_attribute("data-job") for page in pages}
    assert len(jobs) == len(pages), jobs
    versions = session.get(url + ";versions").json()
    assert len(versions) == len(pages), versions
    digest = hashlib.sha256(data).digest()
    for version in versions:
        assert hashlib.sha256(session.get(version).content).digest() == digest


def _wait_for_upload_end(page) -> None:
    """Wait until the page's upload is done; otherwise fail saying what the page shows."""
    ended = "li.upload[data-state='done'], li.upload[data-state='failed']"
    try:
        page.wait_for_selector(ended, timeout=90_000)
    except Exception as error:
        raise AssertionError(f"the upload did not end: {_upload_rows(page)}") from error
    assert page.locator("li.upload[data-state='done']").count() == 1, _upload_rows(page)


def _upload_rows(page) -> str:
    rows = page.locator("li.upload")
    states = [
        f"{rows.nth(i).get_attribute('data-state')}: {rows.nth(i).inner_text()}"
        for i in range(rows.count())
    ]
    return f"rows {states}, messages {page.locator('#messages').inner_text()!r}"


def test_reload_mid_upload_sends_only_missing_chunks(server, browser_context, tmp_path):
    base = server.url
    alice, ns = alice_with_namespace(base, "/hatrac/resume")
    data = os.urandom(3 * 8 * 1024 * 1024 - 1000)  # three chunks, the last one short
    source = tmp_path / "resume.bin"
    source.write_bytes(data)
    page = logged_in(browser_context, base)
    open_page(page, base + ns)
    answered_503 = []

    def trouble(route):
        # chunk 1 is answered 503 once (the page retries it); the connection drops
        # on every attempt at chunk 2, so the upload stops with a message
        if route.request.url.endswith("/1"):
            if answered_503:
                return route.continue_()
            answered_503.append(1)
            return route.fulfill(status=503, body="503 Service Unavailable\nTry again.\n")
        return route.abort("connectionreset")

    page.route(re.compile(r";upload/[^/]+/[12]$"), trouble)
    page.set_input_files("#pick-files", str(source))
    page.wait_for_selector("li.upload[data-state='failed']", timeout=60_000)
    assert "connection was lost" in page.locator("li.upload .upload-text").inner_text()
    assert "connection was lost" in page.locator("#messages").inner_text()
    job = page.locator("li.upload").get_attribute("data-job")
    assert alice.get(base + job).json()["chunks-received"] == [0, 1]
    assert alice.get(base + ns + "/resume.bin").status_code in (404, 409)  # no version
    assert answered_503 == [1]
    page.unroute(re.compile(r";upload/[^/]+/[12]$"))

    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert "resume.bin" in page.locator("#resumable").inner_text()
    sent = chunk_requests(page)
    page.set_input_files("#pick-files", str(source))
    page.wait_for_selector("li.upload[data-state='done']", timeout=60_000)
    assert sorted(sent) == [2]
    assert page.locator("li.upload").get_attribute("data-resumed") == "2"
    stored = alice.get(base + ns + "/resume.bin")
    assert hashlib.md5(stored.content).digest() == hashlib.md5(data).digest()
    assert alice.get(base + job).status_code == 404  # the job was consumed


def test_drop_upload_and_a_name_the_server_refuses(server, browser_context):
    base = server.url
    alice, ns = alice_with_namespace(base, "/hatrac/drop")
    page = logged_in(browser_context, base)
    open_page(page, base + ns)
    page.evaluate(
        """() => {
            const transfer = new DataTransfer();
            transfer.items.add(new File(['dropped bytes'], 'dropped.txt', {type: 'text/plain'}));
            transfer.items.add(new File(['x'], 'n'.repeat(300)));
            document.getElementById('drop').dispatchEvent(
                new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }"""
    )
    page.wait_for_selector("li.upload[data-state='failed']")
    page.wait_for_selector("li.upload[data-state='done']")
    reply = alice.get(base + ns + "/dropped.txt")
    assert reply.content == b"dropped bytes" and reply.headers["Content-Type"] == "text/plain"
    message = page.locator("#messages .message.error").inner_text()
    assert "400" in message and "limit is 255" in message and "request id" in message
    assert alice.get(base + ns).json() == [ns + "/dropped.txt"]


def test_session_ending_mid_upload_is_reported(server, browser_context, tmp_path):
    base = server.url
    alice, ns = alice_with_namespace(base, "/hatrac/expire")
    source = tmp_path / "later.bin"
    source.write_bytes(os.urandom(2 * 8 * 1024 * 1024 + 1))
    page = logged_in(browser_context, base)
    open_page(page, base + ns)
    held = []

    def end_session_first(route):  # the session ends while chunk 2 is on its way
        if not held:
            held.append(1)
            browser_context.request.delete(base + "/authn/session")
        route.continue_()

    page.route(re.compile(r";upload/[^/]+/2$"), end_session_first)
    page.set_input_files("#pick-files", str(source))
    page.wait_for_selector("li.upload[data-state='failed']", timeout=60_000)
    text = page.locator("#messages .message.error").inner_text()
    assert "session has ended: log in again" in text and "request id" in text
    assert alice.get(base + ns + "/later.bin").status_code in (404, 409)  # no partial version


def test_a_file_over_the_limit_is_refused_before_sending(server, browser_context, tmp_path):
    base = server.url
    alice, ns = alice_with_namespace(base, "/hatrac/huge")
    huge = tmp_path / "huge.bin"
    with open(huge, "wb") as handle:  # sparse: one byte past 5 TiB costs no disk
        handle.truncate(5 * 1024**4 + 1)
    page = logged_in(browser_context, base)
    open_page(page, base + ns)
    sent = []

    def seen(request):
        if ";upload" in request.url:
            sent.append(request.url)

    page.on("request", seen)
    page.set_input_files("#pick-files", str(huge))
    page.wait_for_selector("li.upload[data-state='failed']")
    text = page.locator("#messages .message.error").inner_text()
    assert "413" in text and "the largest object this service stores is 5.0 TiB" in text
    assert sent == [] and alice.get(base + ns).json() == []


def test_cancel_an_upload(server, browser_context, tmp_path):
    base = server.url
    alice, ns = alice_with_namespace(base, "/hatrac/cancel")
    source = tmp_path / "cancelled.bin"
    source.write_bytes(os.urandom(2 * 8 * 1024 * 1024 + 1))  # the smallest chunked upload
    page = logged_in(browser_context, base)
    open_page(page, base + ns)
    page.route(re.compile(r";upload/[^/]+/2$"), lambda route: route.abort("connectionreset"))
    page.set_input_files("#pick-files", str(source))
    page.wait_for_selector("li.upload[data-job]", timeout=60_000)
    job = page.locator("li.upload").get_attribute("data-job")
    page.click("li.upload button:text('Cancel')")
    page.wait_for_selector("li.upload[data-state='cancelled']")
    assert alice.get(base + job).status_code == 404  # the job is gone on the server
    assert alice.get(base + ns + "/cancelled.bin").status_code in (404, 409)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#resumable").is_hidden()  # nothing left to resume
